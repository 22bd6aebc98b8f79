from stages.model.generate import generate_answers
from stages.model.modeling import load_model, load_tokenizer


def test_batched_equals_unbatched_and_keeps_order(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    model = load_model(tiny_model_dir)
    qs = ["头疼怎么办？", "挂号需要带身份证吗，还是医保卡就可以？", "高血压"]
    one = generate_answers(model, tok, qs, "你是客服。", max_new_tokens=6, batch_size=1, progress=False)
    many = generate_answers(model, tok, qs, "你是客服。", max_new_tokens=6, batch_size=3, progress=False)
    assert [r["answer"] for r in one] == [r["answer"] for r in many]
    assert all(r["new_tokens"] <= 6 for r in many)
