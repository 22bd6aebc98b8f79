def test_tiny_model_loads_and_generates(tiny_model_dir):
    from stages.model.modeling import load_model, load_tokenizer
    from stages.model.prompt import encode_prompts

    tok = load_tokenizer(tiny_model_dir)
    model = load_model(tiny_model_dir)
    batch = encode_prompts(tok, ["头疼怎么办？", "挂号需要带什么？"], "你是客服。")
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 4)
