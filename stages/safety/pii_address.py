"""Addresses for ``stages.safety.pii.mask_pii`` (which calls ``mask_addresses`` on simplified text).

* **Labelled**: 地址 / 住址 / 家住 / 住在 / 住 / 家在 / 寄到 / 送到 … followed by address units (省 市 区 路 号 小区 栋
  单元 室 村 组 …). Masked when the value holds a digit (or a Chinese-numeral building / room) with a unit other
  than a floor or room alone, or two units: "住在28楼" and "住在重症监护室" are not addresses, "住幸福小区5号楼"
  is. A room number written without its unit after the last unit ("…2单元401") goes with it.
* **Bare** street addresses: [province/city] [district] road + number (建国路88号, 高新南九道27号), then a
  building or estate name (恒信大厦, 安居苑东区, 信达科创园) and building / unit / floor / room parts in digits,
  letters or Chinese numerals (3栋2单元301室, A座1103, 七号楼二单元).
* **Bare** estates: an estate name (…小区 / 花园 / 社区 / 公寓 / 家园 / 新村 / 苑) followed by a numbered building.
* **Bare** rural addresses: a village and its group (李楼村三组, 黄岗村3组17号).
* **Bare** flats (session 24): an estate and building-unit-room with dashes (碧桂园凤凰城15-3-602; right after an
  address already masked, "[地址]3-2-1101" joins it), a numbered building + unit or entrance + room anywhere
  (12号楼3门201); 宿舍 / 宿舍楼 count as a unit (住…电子厂C3宿舍楼512).

* Session 25: Taiwan / Hong Kong forms (信义路三段134巷5弄7号, 5楼之2, 沙田第一城21座15楼G室), English street addresses
  (Room 1203, Block B, 88 Jianguo Road), spaces typed inside an address (幸福里小区 7栋 2单元 503 is masked in its squeezed
  form when that finds more), a state farm's team / a Bingtuan regiment's company / a compound's row and house, an
  estate's name before its building (碧桂园十里银滩11栋2203), a label and a dashed flat (送到 5-2-301).

* Session 28: rural addresses — a village group after 沟 / 庄 / 寨 / 湾 / 坪 / 岗 / 嘎查 … (张家沟三组), a named 村民小组, a
  house by its place in the village (吕庄村东头第三户), a hamlet of a township (红星乡前进屯), a house number in a village
  (坝下村后厝56号) — and buildings of an industrial park (葵涌工业园C3栋); then estates named …城 / …府 / …公馆, staff
  compounds and campuses (兰大家属院8号楼, 一拖生活区), 和 in an estate's name, lettered zones (凤凰城C区28幢), 里 lanes
  (福安里7号), a village of a township or banner (解放乡火普村, 巴彦图嘎查) and a village's named group (大桥村下坝组).

* Session 29: a house by its row and place (…村委会对面那排第二户), numbered 街坊, an estate's phase and building
  (万科蓝山3期7栋), 家 / 和 in a road's name, factory buildings, rows of site housing, delivery points at an estate, an
  estate named alone after a home label (我家在碧桂园), the flat after an address already masked, addresses given in
  pieces (花园，D3栋，9楼，903), 12#楼, R1区, dormitory / care-home rooms, 组团17-1-3, flats in a named block (公寓1908室),
  a natural village under its 村委会, a named 队, farm management zones, 大道东23号, 坊 lanes.

A city or district alone is not masked (it does not find a person); a hospital's own departments and floors
(住院部3楼12床, 门诊楼2楼, 住你们住院部5号楼12床) are not addresses."""
from __future__ import annotations

import re
from collections import Counter

_NUM = r"[\d一二三四五六七八九十百零〇两]"
_NOT_PLACE = "在住是我你他她的了到去从和与及或离附近旁边对面"          # words that end a place name
_VILLAGE_CHAR = "(?:(?![" + _NOT_PLACE + r"])[\u4e00-\u9fa5])"      # 家 may be in a village name: 张家村
_PLAIN_PLACE_CHAR = "(?![" + _NOT_PLACE[:7] + "家" + _NOT_PLACE[7:] + r"])[\u4e00-\u9fa5]"
# session 29: 家 inside a road or lane name after a name character (丰家巷8号, 李家胡同3号), not 我家 / 你家
_PLACE_CHAR = ("(?:" + _PLAIN_PLACE_CHAR + r"|(?<=[\u4e00-\u9fa5])(?<![我你他她咱俺])家(?=[\u4e00-\u9fa5]?(?:巷|胡同|街|路|弄))"
               r"|(?<![我你他她咱俺们爸妈])和(?=[\u4e00-\u9fa5]{1,3}(?:路|街|大道|巷|里)\d))")      # and 和平路9号
_UNIT = (r"(?:宿舍楼|宿舍|省|自治区|市|区|县|镇|乡|街道|村|邨|阁|组(?!团)|路|街|大道|巷|弄|胡同|小区|花园|社区|公寓|家园|新村|大厦|广场|号楼|号院|"
         r"号|栋|幢|座|单元|楼|层|室|户)")
_UNIT_RE = re.compile(_UNIT)
_COARSE = {"省", "自治区", "市", "区", "县", "镇", "乡", "街道", "楼", "层", "室", "户"}   # a city, or a floor alone
_ROOM = r"(?:[A-Za-z]?\d{2,5}(?!\d)|[零〇一二三四五六七八九]{3,4})?"       # "…2单元401", "…二单元一零一"
_ADDR_LABEL = re.compile(r"((?:家庭住址|家庭地址|收货地址|联系地址|住址|地址|家住|住在|居住在|居住地|户籍地|户籍所在地|"
                         r"我家就在|家就在|家在|屋企喺|屋企住喺|屋企系|屋企在|寄到|寄至|寄去|邮寄到|送到|送至|发到|住(?!院|宿|址))[:：]? ?)"
                         r"((?:[\u4e00-\u9fa5A-Za-z0-9#\-]{0,12}?" + _UNIT + r")+(?:之\d{1,2})?" + _ROOM + ")")
_ROAD = r"(?:路|街|大道|道|巷|弄|胡同|里|坊)"          # 里: a lane quarter (福安里7号, 金山西二里45号; session 28)
# a road and its house number; Taiwan / Hong Kong style adds a section and lanes (信义路三段134巷5弄7号, session 25)
_ROAD_NO = _ROAD + r"(?:[一二三四五六七八九十]{1,3}段)?(?:[东西南北]?\d+巷)?(?:\d+弄)?[东西南北中]?[甲乙丙丁]?\d+(?:弄\d+)?号"
_ADDR_HINT = re.compile(_ROAD_NO + r"|(?:小区|花园|社区|公寓|家园|新村|苑|园|城|府|馆|院|区|坊|舍)[A-Za-z]?" + _NUM
                        + r"|[村屯]" + _NUM + r"{1,3}[组社队]|大队" + _NUM + r"|\d[-/]\d{1,3}[-/]\d|(?:号楼|栋|幢|座)" + _NUM
                        + r"|分场|团" + _NUM + r"{1,3}连|\d排\d|邨|[楼阁]\d{1,4}[A-Za-z]?室|座\d{1,3}楼"
                        + r"|(?:沟|庄|寨|湾|坪|岗|洼|营|堡|铺|嘎查)" + _NUM + r"{1,3}[组社队]|村民小组|第" + _NUM + r"{1,3}[户家]"
                        + r"|(?:[乡镇旗]|苏木)[\u4e00-\u9fa5]{1,4}(?:屯|村|嘎查)|村[\u4e00-\u9fa5]{0,4}(?:\d{1,4}号|组|屯|寨)"
                        + r"|\d村\d|期[A-Za-z]?" + _NUM + r"{1,3}(?:号楼|栋|幢)|排\d{1,3}号|驿站|快递柜|丰巢|门卫|\[地址\]|#楼|组团\d|作业站|村委会"
                        + r"|(?:公寓|大厦|写字楼|公馆|华庭)[A-Za-z\d]")
_BUILDING_NAME = r"(?:[\u4e00-\u9fa5A-Za-z]{1,10}(?:大厦|大楼|商务楼|写字楼|公寓|花园|小区|社区|家园|新村|苑|园|城|广场|中心))"
_PARTS = (r"(?:[东西南北]区|" + _NUM + r"{1,3}期)?"
          r"(?:[A-Za-z\d一二三四五六七八九十]{1,4}(?:号楼|#楼|栋|幢|座|单元|梯|楼|层|室|号|户))*(?:之\d{1,2})?(?:宿舍|房间?)?"
          + _ROOM)
_ADDR = re.compile("(?:" + _PLACE_CHAR + r"{2,6}(?:省|自治区|市))?(?:" + _PLACE_CHAR + r"{1,6}(?:区|县))?"
                   + _PLACE_CHAR + r"{2,8}" + _ROAD_NO + r"(?:院|楼)?" + _BUILDING_NAME + "?" + _PARTS)
# session 28: estates named …城 / …府 / …公馆, staff compounds (家属院, 生活区, 街坊, 宿舍), campuses; 和 inside the name
# (东信和苑); a lettered or numbered zone and a phase before the building (湖东凤凰城C区28幢, 万科城四期17栋B座2304)
_ESTATE_CHAR = "(?:(?![" + _NOT_PLACE.replace("和", "") + r"])[\u4e00-\u9fa5])"
_ESTATE_WORD = (r"(?:小区|花园|社区|公寓|家园|新村|苑|工业园|工业区|产业园|科技园|园区|城|府|公馆|华庭|家属院|家属区|生活区|街坊|"
                r"宿舍区|宿舍|校区|养老院|敬老院|福利院|老年公寓|组团|园)")
# session 29: a numbered 街坊 (一拖生活区37街坊9栋), an industrial zone's factory building (富民工业区2号厂房)
_ESTATE = re.compile(_ESTATE_CHAR + r"{2,8}" + _ESTATE_WORD + r"(?:(?:[东西南北]|[A-Za-z]\d{0,2}|" + _NUM + r"{1,2})区|"
                     + _NUM + r"{1,3}(?:期|街坊)){0,2}"
                     r"[A-Za-z\d一二三四五六七八九十]{1,4}(?:号楼|#楼|栋|幢|座|号厂房|号车间|号仓库)" + _PARTS)
# session 24: an estate and building-unit-room written with dashes (碧桂园凤凰城15-3-602, [地址]3-2-1101), and a numbered
# building + unit or entrance + room anywhere (和平里七区12号楼3门201): precise enough to find a flat
_DASHED = r"\d{1,3}([-/])\d{1,2}\1\d{3,5}(?![-/\d])"
_ESTATE_DASHED = re.compile("(?:" + _PLACE_CHAR + r"{2,8}(?:小区|花园|社区|公寓|家园|新村|苑|园|城|里|府|庭|湾|居)[ ]?|(?<=\[地址\])|(?<=\[地址\] ))"
                           + _DASHED
                           # Chongqing: building-unit-floor-flat after a named zone (两江新宸4组团17-1-3; session 29)
                           + "|" + _PLACE_CHAR + r"{2,8}" + _NUM + r"{1,2}组团\d{1,3}-\d{1,2}-\d{1,4}(?![-/\d])")
# a label, then a flat written with dashes alone (送到 5-2-301, 地址：3/2/1101; session 25)
_LABEL_DASHED = re.compile(r"((?:地址|住址|家住|住在|寄到|寄至|送到|送至|发到|收货地址)[:：是]? ?)(\d{1,3}([-/])\d{1,2}\3\d{3,5})(?![-/\d])")
_BUILDING_UNIT = re.compile(_PLACE_CHAR + r"{0,8}?" + _NUM + r"{1,3}(?:号楼|栋|幢)" + _NUM + r"{1,2}(?:单元|门)"
                            + r"(?:\d{3,4}|[零〇一二三四五六七八九]{3,4}|\d{1,2}-\d{1,2}(?![-\d]))(?:室|号|户)?")
# a village and the places a village group follows in the countryside (张家沟三组, 巴彦图嘎嘎查二组 — 嘎查: a Mongolian
# village; session 28)
_HAMLET = r"(?:村|屯|沟|庄|寨|湾|坪|岗|洼|营|堡|铺|嘎查)"
_TOWN_CHAR = "(?:(?![" + _NOT_PLACE + r"们有几个这那每各哪些多少都也还就很上下里])[\u4e00-\u9fa5])"
# inside a village (session 28): a named group or hamlet (大桥村下坝组), a house by its place (吕庄村东头第三户), a house
# number (坝下村后厝56号)
_SUB_UNIT = _VILLAGE_CHAR + r"{1,4}(?:组|屯|寨|队)"
_BY_POSITION = r"(?:[东西南北](?:头|边)|口)第" + _NUM + r"{1,3}[户家]|第" + _NUM + r"{1,3}户"
_HOUSE_NO = _VILLAGE_CHAR + r"{0,4}?\d{1,4}号(?![楼院床])"
_VILLAGE = re.compile(_VILLAGE_CHAR + r"{1,4}" + _HAMLET + _NUM + r"{1,3}[组社队](?:\d+号)?|" + _VILLAGE_CHAR + r"{1,4}大队"
                      + _NUM + r"{1,3}小?队"
                      # session 25: a state farm's team (友谊农场五分场三队), a Bingtuan regiment's company (一四二团十连),
                      # a compound's row and house (纺织厂家属院5排3号)
                      + "|" + _VILLAGE_CHAR + r"{1,6}农场(?:" + _NUM + r"{1,3}分场|第?" + _NUM + r"{1,3}管理区)?" + _NUM
                      + r"{1,3}(?:[队连]|作业站)"                    # s29: 七星农场第三管理区12作业站
                      + r"|(?<![\d一二三四五六七八九十])" + _NUM + r"{1,4}团" + _NUM + r"{1,3}连"
                      # s29: a natural village under its 村委会 (Hainan, Guangdong: 七里村委会瓦窑村)
                      + "|(?:(?![区县市镇乡])" + _VILLAGE_CHAR + r"){1,4}村委会" + _VILLAGE_CHAR + r"{1,4}村"
                      + "|" + _VILLAGE_CHAR + r"{0,8}(?:家属院|大院|宿舍区|板房|活动房|工棚)" + _NUM + r"{1,3}排\d{1,3}号"   # s29: 工地板房二排5号
                      # session 28: a named village group (曼弄村民小组18号), a village and what is inside it, 3村5组,
                      # a village of a township (解放乡火普村, 阿巴嘎旗巴彦图嘎查, 灯塔乡正蓝后三屯; not "我们乡有几个村")
                      + "|" + _VILLAGE_CHAR + r"{1,4}村民小组(?:\d{1,4}号)?"
                      + "|" + _VILLAGE_CHAR + r"{1,4}(?:村|庄|屯|寨)(?:" + _BY_POSITION + ")"
                      + "|" + _VILLAGE_CHAR + r"{1,4}村" + _SUB_UNIT
                      + r"|\d{1,2}村\d{1,2}组"
                      + "|" + _TOWN_CHAR + r"{2,4}(?:[乡镇旗]|苏木)" + _TOWN_CHAR + r"{2,4}(?:屯(?!子)|村|嘎查)"
                      + r"(?![委卫医民里口子长])(?:" + _SUB_UNIT + "|" + _NUM + r"{1,3}[组社队]|" + _BY_POSITION + "|"
                      + _HOUSE_NO + ")?"
                      + "|" + _VILLAGE_CHAR + r"{1,4}村" + _HOUSE_NO)
# a numbered building and a flat number without a unit (碧桂园三期26栋1802, 门牌是3号楼901); not a hospital's building
_NAME_OF_ESTATE = "(?:(?![区县市镇省乡])" + _PLACE_CHAR + ")"     # the estate's own name before a building, not its district
_BUILDING_ROOM = re.compile(_NAME_OF_ESTATE + r"{0,8}?(?:" + _NUM + r"{1,2}期)?[A-Za-z]?(?<![院部楼科])" + _NUM
                            + r"{1,3}(?:号楼|栋|幢)\d{3,4}(?:室|号|户)?(?![\d床病诊])"
                            # an estate's phase and building without a flat (万科蓝山3期7栋; session 29)
                            + "|" + _NAME_OF_ESTATE + r"{2,8}?(?<!第)" + _NUM + r"{1,2}期[A-Za-z]?" + _NUM + r"{1,3}(?:号楼|栋|幢)"
                            + _PARTS
                            # Hong Kong: a block, its floor and the flat (第一城21座15楼G室; session 25)
                            + "|" + _NAME_OF_ESTATE + r"{0,8}?第?\d{1,3}座(?:\d{1,3}楼(?:[A-Za-z](?![A-Za-z])室?|\d{1,4}室)"
                            + r"|\d{1,2}[A-Ha-h](?![A-Za-z]))"                       # 第一城26座18G: floor and flat
                            # a Hong Kong estate, its block and the flat (沥源邨福海楼803室, 太古城耀星阁20楼D室; session 27)
                            + "|" + _NAME_OF_ESTATE + r"{1,6}(?:邨|新邨|城|花园|苑)(?:\d{1,2}期)?" + _NAME_OF_ESTATE
                            + r"{1,4}(?:楼|阁|轩|居|大厦)(?:\d{1,2}楼)?(?:\d{2,4}室|\d{3,4}(?![\d床])|[A-Ha-h]室)")
# session 29: a flat in a named apartment block or tower (世纪海景公寓1908室, 富力天河华庭3座2106) — not the hospital's
_TOWER_ROOM = re.compile(_ESTATE_CHAR + r"{2,8}(?:公寓|大厦|写字楼|公馆|华庭)(?:[A-Za-z\d]{1,3}座)?[A-Za-z]?\d{3,4}(?:室|房)?(?!\d)")
# session 29: a delivery point at an estate (翡翠城三期南门菜鸟驿站, 幸福小区东门丰巢柜)
_DELIVERY = re.compile(_ESTATE_CHAR + r"{2,8}" + _ESTATE_WORD + r"(?:" + _NUM + r"{1,2}期|[东西南北A-Za-z\d]区)?"
                       r"(?:[东西南北正]门|大门|门口|[东西南北]门口)?(?:的)?(?:菜鸟驿站|妈妈驿站|兔喜驿站|驿站|快递柜|丰巢柜|丰巢|"
                       r"门卫室|门卫|快递点|物业)")
# session 29: an estate named alone after a home label (我住在阳光100国际新城, 我家在碧桂园) — not the hospital
_LABEL_ESTATE = re.compile(r"((?:家庭住址|家庭地址|住址|地址|家住|住在|居住在|我家就在|家就在|家在|我家是)[:：是]? ?)"
                           r"((?:(?![" + _NOT_PLACE + r"])[\u4e00-\u9fa5A-Za-z\d]){2,10}"
                           r"(?:小区|花园|苑|园|家园|新城|新村|城|府|公寓|公馆|山庄|华庭|庭院|湾))(?![\u4e00-\u9fa5A-Za-z\d])")
# places a label may name that are not a home (住在幼儿园旁, 住在大学城)
_NOT_ESTATE = re.compile(r"(?:幼儿园|动物园|植物园|公园|校园|菜园|果园|墓园|陵园|乐园|产业园|工业园|科技园|县城|省城|京城|古城|老城|"
                         r"新城|山城|商城|大学城|科技城|影城|影视城)$")
# session 29: the building / unit / flat given after an address already masked ([地址]，6栋东单元; [地址]3号楼)
_SEP = "[，, ]?"
_AFTER_MASKED = re.compile(r"(?<=\[地址\])(" + _SEP + ")(?:" + _NUM + r"{1,2}期" + _SEP + r")?(?:[A-Za-z\d一二三四五六七八九十]{1,4}"
                           r"(?:号楼|栋|幢|座)(?:" + _SEP + r"[东西中A-Za-z\d一二三四五六七八九十]{1,3}(?:单元|门))?(?:" + _SEP
                           + r"\d{3,4}(?:室|号|户)?)?|\d{1,2}单元" + _SEP + r"\d{3,4}室?)(?![\d号床])")
# the hospital's own buildings after 住 / 在 (我爸住你们住院部5号楼12床): not a home (session 25)
_HOSPITAL_PART = re.compile(r"住院部|住院楼|门诊楼|医技楼|病房楼|急诊楼|医院|病区|你们")
# a public place (the hospital, a clinic, a community centre) before a bare road + number: its address is not personal
_INSTITUTION = re.compile(r"(?:医院|院区|分院|门诊|诊所|卫生院|卫生服务|中心|药房|药店|东门|西门|南门|北门|正门|大门)")


# spaces typed between an address's numbers and units (幸福里小区 7栋 2单元 503, 人民路 45 号 3 幢): tried squeezed out
_ADDR_SPACE = re.compile(r"(?<=[号栋幢座元室楼层户路街道弄巷区园苑村组队]) (?=\d)|(?<=\d) (?=[号栋幢座单室楼层户弄巷组队])"
                         # session 29: an address given in pieces (保利心语花园，D3栋，9楼，门牌903; 碧桂园。十栋。二单元。801)
                         r"|(?<=[园苑城邨区期栋幢座元楼层梯])[，,。、 ](?:门牌号?)?(?=[A-Za-z\d一二三四五六七八九十]{1,4}"
                         r"(?:期|栋|幢|座|号楼|#楼|单元|楼|层|梯|室)|\d{3,4}(?![\d.]))")
# English street addresses (Room 1203, Block B, 88 Jianguo Road; No. 15, Lane 300, Xiangyang Road; session 25)
_EN_ROAD = r"(?:Road|Rd|Street|St|Avenue|Ave|Lane|Boulevard|Blvd|Highway|Hwy)(?![A-Za-z])"
_EN_ROAD_WORD = re.compile(r"(?<![A-Za-z])" + _EN_ROAD + r"|\d/F")   # the English patterns are tried only where one stands
# a flat and its floor written the Hong Kong way (Flat 12B, 8/F, Block 3, Kingswood Villas; Rm 1603, 16/F; session 27)
_EN_FLAT = re.compile(r"(?<![A-Za-z])(?:Flat|Room|Rm\.?|Unit|Apt\.?) ?[A-Z]?\d{0,4}[A-Z]?,? \d{1,3}/F"
                      r"(?:,? (?:Block|Blk\.?|Tower) ?[A-Z0-9]{1,3})?(?:,? (?:[A-Z][a-z]+ ){0,3}(?:Villas?|Gardens?|Court|Estate|"
                      r"Centre|Center|Mansion|Building|House|Tower|Plaza|Terrace|Heights|City|Garden|Park)(?![A-Za-z]))?")
_EN_ADDR = re.compile(r"(?<![A-Za-z])(?:(?:Room|Rm\.?|Flat|Apt\.?|Apartment|Unit|Suite) ?(?:[A-Z]?\d+[A-Z]?|[A-Z](?![a-z])),? )?"
                      r"(?:\d{1,3}/F,? )?(?:(?:Block|Blk\.?|Building|Bldg\.?|Tower) ?[A-Z0-9]{1,4},? )?"
                      r"(?:(?:[A-Z][a-z]+ ){0,2}[A-Z][a-z]+, )?"          # the estate (Flat B, 12/F, Block 3, Kornhill, 2 …)
                      r"(?:No\. ?)?\d{1,5}[A-Z]?,? (?:(?:Lane|Alley) \d{1,4},? )?(?:[A-Z][a-z]+ ){1,3}" + _EN_ROAD)


def _is_address(value: str) -> bool:
    """A street, estate, building or village unit, with a number (digits, or Chinese numerals before a building /
    unit / group) or a second such unit: not a city or district alone, not a floor or room alone."""
    units = [u for u in _UNIT_RE.findall(value) if u not in _COARSE]
    numbered = re.search(r"\d|(?<![哪几每这那某])" + _NUM + r"+(?:号楼|栋|幢|单元|组)|第" + _NUM + r"{1,3}[户排]",
                         value)     # not 住哪一栋; session 29: a house by its place (…对面那排第二户)
    return bool(units) and (bool(numbered) or len(units) >= 2)


def mask_addresses(text: str, counts: Counter) -> str:
    """Every address form above; a text with spaces inside an address is masked in its squeezed form only when that
    finds more addresses (so spaces elsewhere stay as typed)."""
    found = Counter()
    masked = _mask_addresses(text, found)
    if _ADDR_SPACE.search(text):
        found_squeezed = Counter()
        squeezed = _mask_addresses(_ADDR_SPACE.sub("", text), found_squeezed)
        if found_squeezed["address"] > found["address"]:
            masked, found = squeezed, found_squeezed
    counts.update(found)
    return masked


def _mask_addresses(text: str, counts: Counter) -> str:
    def labelled(m):
        if not _is_address(m.group(2)) or _public(m):
            return m.group(0)
        counts["address"] += 1
        return m.group(1) + "[地址]"

    def bare(m):
        if _public(m):
            return m.group(0)
        counts["address"] += 1
        return "[地址]"

    def _public(m):      # "医院东门是解放大道1277号": a road + number alone right after a public place; after a label,
        value = m.group(m.lastindex or 0) if m.re is _ADDR_LABEL else m.group(0)     # the hospital's own building
        if m.re is _ADDR_LABEL and _HOSPITAL_PART.search(value):
            return True
        return (not re.search(r"(?:号楼|栋|幢|座|单元|室|户|层|弄|组|队)", value)
                and bool(_INSTITUTION.search(m.string[max(0, m.start() - 12):m.start()])))

    def keep_first(m):          # the first group stays (送到 5-2-301: the label; [地址]，6栋…: the separator)
        counts["address"] += 1
        return m.group(1) + "[地址]"

    def label_estate(m):
        return m.group(0) if _HOSPITAL_PART.search(m.group(2)) or _NOT_ESTATE.search(m.group(2)) else keep_first(m)

    def unless_hospital(m):              # a named block's flat, unless the hospital's own
        return m.group(0) if _HOSPITAL_PART.search(m.group(0)) else bare(m)

    def dashed(m):                      # right after [地址] the building-unit-room joins it: no second placeholder
        return "" if m.group(0)[0].isdigit() else bare(m)

    text = _ADDR_LABEL.sub(labelled, text)
    if _EN_ROAD_WORD.search(text):
        text = _EN_FLAT.sub(bare, _EN_ADDR.sub(bare, text))
    text = _LABEL_DASHED.sub(keep_first, text)
    text = _LABEL_ESTATE.sub(label_estate, text)
    if _ADDR_HINT.search(text):                          # the bare patterns are slow to scan
        for pattern in (_ADDR, _ESTATE, _VILLAGE, _BUILDING_UNIT, _BUILDING_ROOM, _DELIVERY):
            text = pattern.sub(bare, text)
        text = _TOWER_ROOM.sub(unless_hospital, text)
        text = _ESTATE_DASHED.sub(dashed, text)
        text = _AFTER_MASKED.sub(keep_first, text)     # joins the address before it
    return text
