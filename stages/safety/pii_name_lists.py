"""Name lists for stages/safety/pii_names.py (general knowledge of Chinese naming, not names from any data set):
surnames, compound surnames, characters common in given names, and the common elements of Tibetan and Mongolian names."""
from __future__ import annotations

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
            "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
            "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮"
            "柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古"
            "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇"
            "桑郎甄丛仲虞敖巩明佘池查麻苑迟邝亓仉逄禤缑郜昝蔺冼朴萧闻晁仝"
            # session 23: rarer surnames of the 百家姓 and beyond (辜美华, 隗凤琴, 訾文博 …), leaving out characters
            # that mostly start ordinary words (水, 花, 平, 家, 能, 通 …)
            "奚昌酆廉傅湛禹狄贝伏茅裘宣贲郁杭洪诸钮嵇荀芮羿储汲邴糜隗宓蓬郗钭戎韶蓟邰鄂赖屠胥苍莘贡扈燕冀郏"
            "濮阎慕茹宦庾暨弘匡禄阙殳蔚夔厍訾阚毋乜鞠巢蒯荆竺逯桓辜鄢甯资凤"
            "楼禚"                                             # session 24: 楼佳音, 禚玉兰
            "乐区"                                             # session 25: 乐永福, 区志明 (Cantonese 區)
            "笪粘折咸")                                        # session 29: 笪玉兰, 粘秀琴, 折占山 (陕北), 咸德山
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
                     "司徒", "夏侯", "令狐", "端木", "西门", "南宫", "独孤", "轩辕", "呼延", "亓官", "万俟", "闻人",
                     "赫连", "公羊", "澹台", "公冶", "宗政", "濮阳", "淳于", "太叔", "申屠", "仲孙", "钟离", "鲜于",
                     "闾丘", "司空", "司寇", "颛孙", "巫马", "漆雕", "壤驷", "公良", "拓跋", "宰父", "谷梁", "段干",
                     "东郭", "羊舌", "微生", "梁丘", "左丘")
# characters common in given names (general knowledge of Chinese naming; men's, women's, children's names of
# several generations). After a weak cue (我妈, 帮, 患者 …) every given-name character must be one of them:
# "我妈戴全口假牙" (口), "让孩子舒服些" (服), "患者应戒酒" (戒), "小三阳患者谷丙" (丙) are not names.
GIVEN_CHARS = set(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力林兰凤梅琴云波宁斌浩宇欣佳晨轩涵睿泽子梓思"
    "怡雨萱诗琪瑶婷嘉俊博志国海鹏飞峰龙亮春晓永德福生成荣新立东金贵祥才发武学民友兵光山仁义礼智信忠孝安康宏"
    "伦翔健世广庆全振鑫彬彤蕾薇颖璐倩婉莹雪琳晶燕妍菲慧巧美淑惠珠翠雅芝莉素香月莲真环爱妹茜秋珊莎锦黛青影荔"
    "枝丹蓉眉君蕊菁梦岚婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希飘育滢馥筠柔竹凝欢霄枫芸寒伊亚宜可舒阳"
    "妮宝贝初程恒鸿帆启克旭辰士以家致树炎行时泰盛雄琛钧冠策腾楠榕风航弘毅铭宸奕皓煜昊炜烨晗逸瑞彦凯锋坤"
    "胜利财喜顺富寿松柏兴旺满堂根宗耀祖继承先培增长治和平定邦卫保护军红卫东方向阳跃进朝晖元亨达远勤俭"
    "兆丰登科举彪虎豹鹰鹤鸣凤鸾莺燕蝶芬芸芹芙蓉荷菊梅桃杏李樱花草叶芊茹萌蔓蓓蕙露霖霏雯霓虹彩丝绮纹绣"
    "娇婵娥姣姝娴婧媛嫣妙妤姗嫦娅婕婉娉琦瑾瑜璇璟瑄琼瑶珍珺玲珏琰瑛瑗璐佩然如若依尔一乐心诚正直勋斯天地"
    "中华少晓小大二三四五六七九百千万秀桂淑玉凤兰英芝珍艳红翠香莲琼巧霞凤月爱素云华清洁贞顺美丽娟娣招弟"
    "娣根柱栓锁宝狗牛石铁钢锐锋铮钰银铜磊鑫森林杉松柏楷模范典章彰显著名扬声震宇宙洪涛浪波澜润泽沛"
    "涵淳源江河湖海洲渊深泉溪泓汐沁沐浩瀚潇洒瀚霖雷电霆霜雪冰凌露雨虹晴暖阳晨曦旭昕昱晟晔曜星辰月朗"
    "朝夕岩峰峻岭崇嵩岳巍峥屹岚崎坤垚圣坚城基均培墨尧舜禹汤周秦汉唐宋元明清"
    "仕桐设铭芷昕钰桦芮沫朵悠骏骁驰韬晋祺禧禄贤良善廉政革援抗放跃社卓琨璋瑭珂玥瑷璨琪祎祯禾稷秉穗颂"
    "歆钦锡铎锴锦铖炫烁焕熙灿煊焱炳宏泓渝淼洵浚沛潼澄濠漪滨涌浦津洲湘沅粤蜀黔赣皖鲁豫冀馨蔚苹茵"
    "梁哲栋宣诺凡钊帅恺骞彧翊芃淇蕴昌景"       # session 23: 国梁, 明哲, 一凡, 以诺, 永昌, 景行 …
    "双晚升日冬南北田野白紫丁蓝碧越观畅幸功谊团结敢前意普原奔谦实棠圆壮鹃佑情运群厚音守川好开多书仪合吉里"
    "温路慕研甫语令曼容其官豪西"              # session 25: 双喜, 晚霞, 东升, 旭日, 开心, 好运, 团结 …
    "仓拴占魁姬洙勋"                          # session 29: older rural names (满仓, 拴柱, 占山, 占魁); Korean (英姬, 哲洙)
)
# Tibetan and Mongolian names have no surname: they are runs of common name elements (扎西顿珠, 达瓦次仁, 乌兰其其格,
# 那仁格日乐, 桑吉加措). Two elements or more are a name anywhere; one after a cue (患者巴特尔, 我叫央金). Session 23.
TIBETAN = ("扎西 次仁 达瓦 卓玛 顿珠 央金 格桑 平措 多吉 旺堆 尼玛 拉姆 白玛 德吉 曲珍 索朗 巴桑 普布 边巴 次旦 旦增 洛桑 "
           "强巴 丹增 仁青 罗布 米玛 拉巴 益西 贡布 嘎玛 桑珠 次珍 玉珍 卓嘎 央宗 德庆 琼达 措姆 桑吉 加措 嘉措 "
           "才让 才旦 更登 泽仁 泽旺 拉珍 群培 欧珠 阿旺 土登 贡嘎 久美 晋美 达娃 扎巴 格勒 贡觉 尼珍")
MONGOLIAN = ("巴特尔 其其格 乌兰 苏和 斯琴 宝音 朝鲁 那仁 额尔敦 毕力格 图雅 娜仁 萨仁 乌云 阿拉坦 巴雅尔 满都拉 孟和 "
             "特木尔 哈斯 敖其尔 吉日嘎拉 格日勒 格日乐 阿古拉 其木格 乌日娜 托娅 塔娜 高娃 苏日娜 图门 达来 额尔德尼 "
             "巴图 呼和 宝力道 那顺 乌力吉 吉雅 琪琪格 阿如娜")
# China's 56 ethnic groups (without 族): "蓝春妹畲族六十三岁", "那桂琴，满族" — a name often comes before it (session 28)
ETHNIC_GROUPS = ("汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 拉祜 水 东乡 纳西 "
                 "景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 "
                 "保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺")
# Dai names have no surname: 岩 (men) or 玉 (women) and one or two given elements — 岩温香, 玉香罕, 岩罕 (session 29)
DAI_ELEMENTS = "温 罕 香 应 叫 光 坎 庄 腊 甩 丙 拉 旺 帅 嫩 喃 燕 砍 章 所 依 波 伦 恩 保 胆"
# Yi clan names (家支) that open a Yi name, + a two-character given name: 吉克阿依, 沙马拉布, 曲比阿乌 (session 28)
YI_CLANS = "吉克 沙马 曲比 阿苏 海来 吉伍 马海 勒格 吉木 瓦扎 阿约 倮伍 罗洪 曲木 阿侯 莫色 俄底 日火"
# medicines whose first character is a surname and whose rest reads like a given name (徐长卿, 连翘, 金银花, 华法林):
# never a name, whatever stands around them (jieba's dictionary tags many of them nr). General knowledge of Chinese
# herbal and Western medicines; session 24.
MEDICINES = ("徐长卿 刘寄奴 何首乌 王不留行 杜仲 连翘 柴胡 黄芪 黄连 黄芩 黄柏 黄精 白术 白芍 白芷 白及 白果 白茅根 白头翁 "
             "甘草 甘松 苏叶 苏子 苏木 桑叶 桑葚 桑枝 桑白皮 桑寄生 金银花 金钱草 石斛 石膏 石菖蒲 石决明 车前子 车前草 牛膝 "
             "牛蒡子 牛黄 马齿苋 马勃 党参 丹参 田七 柏子仁 桂枝 桂圆 陈皮 常山 防风 防己 葛根 艾叶 麦冬 麦芽 龙骨 龙胆草 "
             "龙眼肉 罗汉果 余甘子 熊胆 蒲公英 蒲黄 夏枯草 杏仁 胡黄连 高良姜 姜黄 贝母 钩藤 佩兰 藿香 薄荷 荆芥 菊花 "
             "山药 茯苓 红花 红景天 鸡血藤 "
             "连花清瘟 华法林 雷贝拉唑 雷尼替丁 曲美布汀 康复新 金水宝 蒙脱石 莫沙必利 莫西沙星 左氧氟沙星 万古霉素 "
             "吉非替尼 贝那普利 石杉碱甲 易蒙停 安乃近 甘精胰岛素 谷维素 谷胱甘肽 尤卓尔 施慧达 "
             # medicines named after their maker (季德胜蛇药片, 马应龙痔疮膏; session 25)
             "季德胜 马应龙 王老吉 陈李济 胡庆余 雷允上 黄道益").split()
# physicians of history and nationally known medical figures, quoted by patients ("李时珍说何首乌乌发", "张文宏说要多喝
#牛奶"): public, not personal data (the SPEC of tests/fixtures/pii says so); no name may overlap one. General knowledge,
# session 25.
PUBLIC_FIGURES = ("华佗 扁鹊 张仲景 孙思邈 李时珍 叶天士 葛洪 皇甫谧 王叔和 钱乙 朱丹溪 张景岳 李东垣 刘完素 张从正 "
                  "吴鞠通 王清任 薛生白 吴又可 陶弘景 傅青主 喻嘉言 张锡纯 黄元御 王孟英 徐灵胎 陈修园 汪昂 岐伯 淳于意 "
                  "董奉 巢元方 杨继洲 宋慈 钟南山 屠呦呦 林巧稚 吴孟超 李兰娟 张文宏 张伯礼 陈薇 汤飞凡 裘法祖 黄家驷 "
                  "吴阶平 王忠诚 邓铁涛 国医大师 鲁迅 孙中山").split()
# occupations and roles whose first character is also a surname ("我是程序员", "我是司机"): not names after 我是
# ("我是刘老师" / "我是钱工" — a surname with a title — still are); jieba's dictionary vetoes the rest (应届生 nz)
ROLES = ("程序员 安全员 司机 农民 白领 工人 军人 警察 保安 会计 律师 记者 商人 房东 车主 歌手 画家 作家 教练 销售 码农 "
         "高管 文员 职员 店员 柜员 海员 船员 学员 党员 演员 司仪 骑手 车手 全职妈妈 全职太太 上班族 单身 单亲妈妈 "
         "孕妇 产妇 宝妈 新手妈妈 新手爸爸 独生子女 退休工人 退休职工 华侨 留学生 研究生 博士生 本科生 高中生 初中生 "
         "钟点工 丁克 月嫂 育儿嫂 保洁员 保洁 快递员 外卖员 网约车司机 协警 辅警 护林员 程序猿 个体户 贫困户 低保户")   # s24
# relatives and roles: a cue before a name (我老公吴德福) and after one (的家属, 是我的女儿)
KIN = ("妈妈 母亲 老妈 爸爸 父亲 老爸 老公 老婆 丈夫 妻子 爱人 媳妇 对象 儿子 女儿 闺女 孩子 宝宝 小孩 爷爷 奶奶 外公 外婆 "
       "姥姥 姥爷 哥哥 姐姐 弟弟 妹妹 婆婆 公公 岳母 岳父 丈母娘 老人 家人 朋友 同事 邻居 室友 同学 妈 爸 他 她 "
       "老伴 俺娘 俺爹 娘 爹 大哥 二哥 大姐 二姐 哥 姐 弟 妹 叔叔 阿姨 舅舅 舅妈 姑姑 姨妈 伯伯 大伯 侄子 侄女 外甥 外甥女 "
       "孙子 孙女 外孙 外孙女 女婿 儿媳 嫂子 小姑子 表哥 表姐 堂哥 堂姐 亲戚 病友 员工 领导 老板 群主 房东 "
       "舅 阿爸 阿妈 老汉 幺爸 幺叔 姑父 姨父 婶婶 叔 姑 姨 伯 "
       # Cantonese and Taiwanese kin (session 27: 我阿爷何志明, 我细佬黄俊杰, 我外母李玉莲, 我阿嬷…)
       "阿爷 阿嫲 阿公 阿婆 阿嬷 细佬 家姐 外母 外父 舅父 妈咪 爹哋 老豆 老窦 女友 男友 女朋友 男朋友 老细 阿嫂 新抱 "
       "娃 "                                                # session 28: 我娃安子豪 (northern usage)
       "表弟 表妹 堂弟 堂妹 表叔 表姑 表舅 表嫂 堂嫂")          # session 29
# pinyin surnames: "my name is Chen Yiming", "华人Li Wenjun"
PINYIN_SURNAMES = ("Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng Liang Xie "
                   "Song Tang Han Feng Deng Cao Peng Zeng Xiao Tian Dong Yuan Pan Yu Jiang Cai Du Ye Cheng Su Wei Lv "
                   "Lu Ding Ren Shen Yao Cui Zhong Tan Fan Jin Shi Liao Jia Xia Fu Fang Bai Zou Meng Xiong Qin Qiu Yin "
                   "Xue Yan Duan Lei Hou Long Tao Gu Mao Hao Gong Shao Wan Qian Dai Mo Kong Xiang Chang Kang Qi Qiao "
                   "Ouyang Sima Zhuge Situ Shangguan")
# Cantonese (Hong Kong, Macau) and Wade-Giles (Taiwan) romanised surnames: "my name is Chan Tai Man", "病人：Lin Yi-chun"
# (session 27; masked after a cue only — "Wong Tai Sin" and "Ho Man Tin" are also places)
ROMANISED_SURNAMES = ("Chan Wong Lee Cheung Lau Ho Leung Ng Tsang Yeung Kwok Tam Lam Chow Fung Yip Lo Tse Hui Siu Mak "
                      "Kwan Cheng Choi Sze Law Poon Chu Tang Tong Mok Au Yau Yu Chiu Tsui Chung Fong Hung Kong Kwong Lai "
                      "Lui Pang Shum Sin So Tsoi Wai Wan Yuen Ko Koo Kan Chong Chin Cheuk Ching Chau Chui Hon Lok Ngai "
                      "Ngan Pun Sit Suen To Tsai Tso Tung Yim Yiu Yung Ip Kam Lim Ong Tan Chang Hsu Hsieh Kuo Tseng Liao "
                      "Chou Yeh Chuang Chiang Kao Hsiao Chien Shih Sung Wu Lin Huang Liu Yang Chen Li Ma Tai "
                      "Leong Cheong Vong Ieong Kuok Sou Lou Chao Iao")          # Macau spellings



def surname(name: str) -> str:
    """The surname ``name`` starts with (compound first), or ""."""
    return name[:2] if name[:2] in _COMPOUND else (name[:1] if name[:1] in _SINGLE else "")


_COMPOUND, _SINGLE = frozenset(COMPOUND_SURNAMES), frozenset(SURNAMES)
