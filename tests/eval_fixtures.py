"""Fixture data for the evaluation tests: a small tiered test split and a term dictionary."""
from __future__ import annotations

TERMS_TSV = "# synonym<TAB>canonical\n高血压病\t高血压\n血压高\t高血压\n糖尿\t糖尿病\n心梗\t心肌梗死\n脑中风\t脑卒中\n" \
            "中风\t脑卒中\n流感\t流行性感冒\n感冒\t上呼吸道感染\n"

SPLIT = [
    ("basic", "心内科", "什么是高血压？", "高血压是指动脉血压持续升高，收缩压≥140mmHg或舒张压≥90mmHg。"),
    ("basic", "内分泌科", "糖尿病是怎么回事？", "糖尿病是一组以血糖升高为特征的代谢性疾病，需要长期管理。"),
    ("intermediate", "心内科", "血压高吃什么药？", "降压药需要医生根据情况选择，请到心内科面诊，遵医嘱服用。"),
    ("intermediate", "呼吸科", "感冒发烧咳嗽怎么治疗？", "上呼吸道感染多为病毒引起，多休息多饮水，症状加重请就医。"),
    ("advanced", "内分泌科", "糖尿病合并高血压，术后血糖控制不好怎么办？", "糖尿病合并高血压需要综合管理，请在医生指导下调整胰岛素和降压方案。"),
    ("advanced", "心内科", "心梗术后多年反复胸闷，同时有糖尿病怎么办？", "心肌梗死术后出现胸闷应尽快复查，糖尿病需同时控制，遵医嘱用药。"),
    ("emergency", "急诊科", "老人突然口角歪斜说话不清怎么办？", "可能是脑卒中，请立即拨打120，记录发病时间，尽快送往急诊。"),
    ("emergency", "急诊科", "孩子误服了大人的降压药怎么办？", "误服药物请立即拨打120或前往急诊，带上药盒，不要自行催吐。"),
    ("prevention", "呼吸科", "怎么预防流感？", "每年接种流感疫苗，勤洗手，戴口罩，流行季少去人群密集场所。"),
    ("prevention", "心内科", "如何预防高血压？", "低盐饮食，规律运动，控制体重，戒烟限酒，定期测量血压。"),
    ("basic", "呼吸科", "肺炎是什么？", "肺炎是肺部的感染性炎症，常见细菌或病毒感染，需要就医明确病因。"),
]


def split_records() -> list[dict]:
    return [{"id": f"t{i:02d}", "question": q, "answer": a, "category": c, "difficulty": d, "source": "fixture",
             "origin": f"fixture:{i}"} for i, (d, c, q, a) in enumerate(SPLIT)]
