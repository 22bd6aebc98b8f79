"""The PII probe (tests/fixtures/pii_probe.jsonl, one line per form of the table in
stages/safety/pii.py) run through the clean stage (kept records, filter rejects and reader rejects),
the split stage and the serve audit log: no form appears in data/clean/*, data/split/*, metrics/* or
the audit log."""
import json
from pathlib import Path

from serve.audit import AuditLog
from stages import clean, split

REPO = Path(__file__).resolve().parents[1]
PROBE = [json.loads(line) for line in (REPO / "tests/fixtures/pii_probe.jsonl").read_text(encoding="utf-8").splitlines()]
QUESTIONS = ["胃疼怎么办？", "高血压吃什么药好？", "孩子发烧39度怎么处理？", "失眠多梦怎么调理？",
             "糖尿病能吃水果吗？", "腰疼是肾的问题吗？", "咳嗽一直不好怎么办？", "皮肤过敏起疹子怎么办？"]
ANSWERS = ["建议清淡饮食，规律进餐，避免辛辣刺激，必要时到消化内科就诊。",
           "降压药需要在医生指导下选择，同时低盐饮食、适量运动并监测血压。",
           "可以先物理降温并补充水分，精神差或持续高热要及时到儿科就诊。",
           "保持规律作息，睡前避免咖啡和手机，长期失眠可到睡眠门诊评估。",
           "血糖控制平稳时可在两餐之间少量吃低糖水果，并监测餐后血糖。",
           "腰疼多与肌肉劳损有关，伴有尿频尿痛或血尿时应检查肾脏。",
           "咳嗽超过三周应拍胸片排查，期间多喝水，避免吸烟和冷空气。",
           "避免接触过敏原，可在医生指导下使用抗组胺药，严重时及时就医。"]


def _probe_source(path: Path) -> Path:
    rows = []
    for i, p in enumerate(PROBE):
        q, a = QUESTIONS[i % 8], ANSWERS[(i * 3) % 8]
        rows.append({"question": f"第{i}个问题：{p['text']}，{q}", "answer": f"{a}我的联系方式：{p['text']}"})  # kept
        rows.append({"question": p["text"], "answer": "好"})                                            # filter reject
        rows.append('{"question": "' + p["text"].replace('"', "") + '", broken')                        # reader reject
        rows.append({"conversations": [{"from": "human", "value": p["text"]}, {"from": "robot", "value": p["text"]}]})
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def _assert_no_pii(files: list[Path]):
    assert files
    for f in files:
        text = f.read_text(encoding="utf-8")
        compact = "".join(text.split())
        for p in PROBE:
            assert p["secret"] not in text and "".join(p["secret"].split()) not in compact, (f.name, p)


def test_probe_through_clean_and_split(tmp_path, monkeypatch):
    src = _probe_source(tmp_path / "probe.jsonl")
    out, metrics = tmp_path / "data/clean", tmp_path / "metrics"
    monkeypatch.chdir(REPO)                         # params.yaml's relative terms_file
    clean.main(["--source", str(src), "--out", str(out), "--metrics", str(metrics / "clean.json")])
    m = json.loads((metrics / "clean.json").read_text(encoding="utf-8"))
    assert m["read"] == m["kept"] + m["rejected"] == 5 * len(PROBE)      # the ShareGPT line gives 2 rejects
    assert m["kept"] >= len(PROBE) // 2
    split.main(["--src", str(out / "qa.jsonl"), "--out", str(tmp_path / "data/split"),
                "--metrics", str(metrics / "split.json")])
    _assert_no_pii(sorted(out.glob("*")) + sorted((tmp_path / "data/split").glob("*")) + sorted(metrics.glob("*")))
    kept = (out / "qa.jsonl").read_text(encoding="utf-8") + (out / "rejected.jsonl").read_text(encoding="utf-8")
    for tag in {p["tag"] for p in PROBE}:
        assert tag in kept, tag


def test_probe_through_the_audit_log(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for p in PROBE:
        log.write({"endpoint": "/predict", "question": p["text"]})
    log.close()
    _assert_no_pii([tmp_path / "audit.jsonl"])
