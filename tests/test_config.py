from pathlib import Path

import pytest
import yaml

from stages.common.config import ParamsError, load_params, parse_params

REPO = Path(__file__).resolve().parents[1]


def raw():
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def test_repo_params_are_valid():
    p = load_params(REPO / "params.yaml")
    assert p.train.learning_rate > 0 and p.lora.r >= 1 and p.train.epochs > 0
    assert p.train.batch_size >= 1 and p.train.eval_steps >= 1


@pytest.mark.parametrize("section,key,value,msg", [
    ("split", "test_frac", 1.5, "split.test_frac"),
    ("lora", "layers", "first:3", "lora.layers"),
    ("merge", "method", "magic", "merge.method"),
    ("train", "batch_size", 0, "train.batch_size"),
    ("lora", "rank", 8, "lora.rank: unknown key"),
])
def test_bad_values_name_the_key(section, key, value, msg):
    r = raw()
    r[section][key] = value
    with pytest.raises(ParamsError, match=msg.replace(".", r"\.")):
        parse_params(r)


def test_unknown_section_and_missing_file(tmp_path):
    r = raw()
    r["extra"] = {}
    with pytest.raises(ParamsError, match="extra: unknown key"):
        parse_params(r)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
