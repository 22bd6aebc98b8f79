"""Romanised Hong Kong, Macau and Taiwan names for ``stages.safety.pii_names.mask_names`` (session 27; stages/PRIVACY.md).

Hong Kong and Macau people write their names in Cantonese romanisation — a surname and two given syllables, "Chan Tai
Man", "Lee Siu-ming", "LEUNG Wai Man Vivian" — and often an English name before the surname ("Peter Chan", "Mary Wong");
Taiwan uses Wade-Giles with a hyphen ("Lin Yi-chun", "Wu Pei-Hsuan"). Masked:

* after a cue (my name is / name: / patient: / I'm / this is / tell / Mr / Dear … / my son … / 我叫 / 我系 / 病人 / 名字 /
  ——): the surname-first form or an English given name + surname;
* anywhere: a surname + two capitalised given syllables ("Wong Ka Yan 嘅报告", "Regards, Cheng Ka Wai") or a hyphenated
  Taiwanese name — unless it is a Hong Kong place spelled the same way (Wong Tai Sin, Ho Man Tin, Yau Ma Tei …) or a
  place word follows (Road, Street, Station, Estate, Hospital …).
A surname and one syllable alone ("Dr Chan", "Wong Tai") is not masked without a cue."""
from __future__ import annotations

import re
from collections import Counter

from stages.safety.pii_name_lists import KIN, ROMANISED_SURNAMES

_SURNAME = "(?:" + "|".join(ROMANISED_SURNAMES.split() + [s.upper() for s in ROMANISED_SURNAMES.split()]) + ")"
_SYL = r"[A-Z][a-z]{1,5}"                         # a given syllable: Tai, Siu, Cheuk
_GIVEN_EN = r"[A-Z][a-zà-ÿ]{2,10}"                 # an English given name: Peter, Vivian, António
_SURNAME_FIRST = _SURNAME + r" " + _SYL + r"(?:[ -](?:[A-Z][a-z]{1,5}|[a-z]{2,5}))?(?: " + _GIVEN_EN + r"(?= ?[/,，。.(（]|$))?"
_GIVEN_FIRST = _GIVEN_EN + r" " + _SURNAME
_CUE = (r"(?:(?i:my name is|name is|name[:：]|patient(?: name)?[:：]?|i'm|i am|this is|regards,?|thanks,?|cheers,?|"
        r"tell|let|dear|mr\.?|mrs\.?|ms\.?|miss|for|my (?:son|daughter|wife|husband|mother|father|mum|mom|dad|grandma|"
        r"grandpa|grandmother|grandfather|baby|boy|girl|brother|sister|friend)(?: is)?)|我叫|我系|我是|姓名[:：]?|病人[:：]?|"
        r"患者[:：]?|联络人[:：]?|联系人[:：]?|名字|英文名|叫|同|帮|——|—|个仔|个女|"
        + "|".join(sorted(KIN.split(), key=len, reverse=True)) + r") ?")
_CUED = re.compile(r"(?<![A-Za-z])(" + _CUE + r")(" + _SURNAME_FIRST + "|" + _GIVEN_FIRST + r")(?![A-Za-z])")
_THREE = re.compile(r"(?<![A-Za-z])()(" + _SURNAME + r" " + _SYL + r"[ -]" + _SYL + r"|" + _SURNAME + r" [A-Z][a-z]{1,5}-[a-z]{2,5})"
                    r"(?![A-Za-z])")
# Hong Kong and Macau places whose first word is also a surname (general knowledge, not a list of any writer's)
PLACES = {"wong tai sin", "ho man tin", "yau ma tei", "ma on shan", "wong chuk hang", "siu sai wan", "lai chi kok",
          "cheung sha wan", "to kwa wan", "lok ma chau", "tai wo hau", "tai kok tsui", "tai po market", "lau fau shan",
          "ngau tau kok", "ma tau wai", "ma tau kok", "chung hom kok", "wong nai chung", "tai mei tuk", "sha tau kok",
          "ho chung", "lam tsuen", "kam sheung road", "tai lam chung", "lei yue mun", "lee tung", "tai hang tung",
          "chan sha wan", "tung chung", "hung hom", "lo wu", "yau tong", "lam tin", "choi hung", "tai wai", "tai koo",
          "tai hang", "chai wan", "tai po", "ma wan", "kwun tong", "yau yat chuen", "fung wong tsuen", "tin shui wai",
          "wan chai", "ma liu shui", "shek kip mei", "so kon po", "pak tin", "kwai chung", "tsing yi", "lai king"}
_PLACE_AFTER = re.compile(r"^ ?(?:Road|Rd|Street|St|Station|Estate|Hospital|Court|Centre|Center|Village|MTR|Market|"
                          r"District|Garden|Gardens|Park|Plaza|Building|Tower|Terrace|Path|Lane|Avenue|路|街|站|邨|村|道)")


def mask_romanised(text: str, counts: Counter) -> str:
    """Every romanised Hong Kong / Macau / Taiwan name of the forms above as [姓名]."""
    def repl(m):
        name = m.group(2)
        if m.re is _THREE and (any(name.lower().startswith(p) for p in PLACES) or _PLACE_AFTER.match(m.string[m.end():])):
            return m.group(0)
        counts["name"] += 1
        return m.group(1) + "[姓名]"
    return _THREE.sub(repl, _CUED.sub(repl, text))
