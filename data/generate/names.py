"""Word lists and name builders for synthetic Huzhou place names.

All lists are tuples (stable order); choices are drawn with a numpy Generator only.
"""
from __future__ import annotations

import numpy as np

# Streets found in many Chinese towns; the first ones go to the main roads of each county.
CLASSIC_STREETS = (
    "人民路", "解放路", "红旗路", "建设路", "中山路", "新华路", "青年路", "胜利路", "和平路", "文化路",
    "东风路", "团结路", "光明路", "朝阳路", "健康路", "劳动路", "学士路", "府前路", "工农路", "前进路",
)
RING_STREETS = ("环城东路", "环城南路", "环城西路", "环城北路")
LOCAL_STREETS = {  # a local flavour per county (plausible, not a survey)
    "330502": ("青铜路", "凤凰路", "仁皇山路", "衣裳街", "苕溪路", "龙溪路", "白雀路", "吉山路", "红丰路",
               "莲花庄路", "米行街", "霅溪路", "金盖山路", "潜庄路", "北街", "南街", "骆驼桥街"),
    "330503": ("人瑞路", "适园路", "南林路", "嘉业路", "頔塘路", "浔溪路", "泰安路", "东大街", "百间楼街"),
    "330521": ("千秋街", "永安街", "英溪路", "余英路", "云岫路", "志远路", "对河口路", "北湖街"),
    "330522": ("金陵路", "明珠路", "龙山路", "画溪路", "太湖路", "雉城路", "古城街", "长兴港路"),
    "330523": ("昌硕路", "天目路", "浦源大道", "递铺路", "灵峰路", "竹海路", "玉磬路", "凤凰山路"),
}
STREET_WORDS = (
    "金湖", "锦绣", "凤鸣", "青山", "云栖", "桂花", "梅林", "竹园", "白鹭", "东湖", "西山", "长田", "新港",
    "兴业", "振兴", "创业", "科技", "文昌", "学府", "茶园", "桑园", "荷花", "稻香", "渔港", "太湖", "碧浪",
    "清源", "玉湖", "瑞安", "永安", "长安", "安定", "福康", "康宁", "吉祥", "如意", "丰收", "富民", "安居",
    "怡和", "春晖", "秋实", "晓光", "紫金", "翠竹", "银杏", "香樟", "柳岸", "菱香", "莲花", "芙蓉", "芦荻",
    "鹤鸣", "飞英", "潜庄", "塘湾", "溪口", "湾里", "同心", "育英", "启明", "广源", "泰和", "明德", "崇文",
    "尚贤", "致远", "宏图", "嘉禾", "丰登", "乐业", "安澜", "宁远", "通济", "惠民", "利民", "永丰", "新民",
    "德政", "清风", "明月", "望湖", "观澜", "浔溪", "苕南", "苕北", "霞光", "金桥", "银桥", "玉带", "锦溪",
    "天和", "长春", "永兴", "中兴", "新安", "平安", "文星", "文教", "双桥", "三元", "万福", "百合", "丁香",
    "紫藤", "海棠", "玉兰", "杨柳", "樱花", "枫林", "松涛", "竹韵", "兰亭", "菊园", "梅溪", "桃源", "杏坛",
    "书院", "墨池", "笔溪", "湖笔", "丝绸", "蚕花", "鱼乡", "米市", "盐仓", "仓前", "坛头", "塘南", "塘北",
    "罗家", "钱家", "沈家", "姚家", "朱家", "陈家", "吴家", "王家", "施家", "费家", "凌家", "潘家", "戴家",
)
WORD_MEANINGS = {
    "人民": "寓意人民当家作主", "解放": "纪念湖州解放", "红旗": "取红旗飘扬之意", "建设": "寓意建设新城",
    "中山": "纪念孙中山先生", "新华": "寓意新中华", "青年": "因青年突击队参与修建而得名", "胜利": "纪念抗战胜利",
    "和平": "寓意和平安宁", "文化": "因沿线文化设施集中而得名", "东风": "取东风浩荡之意", "团结": "寓意团结奋进",
    "光明": "寓意前途光明", "朝阳": "取旭日东升之意", "健康": "因沿线旧有医院而得名", "劳动": "取劳动光荣之意",
    "学士": "因旧有学士坊而得名", "府前": "因位于旧府署之前而得名", "工农": "寓意工农联合", "前进": "取奋勇前进之意",
}
ROAD_SUFFIXES = ("路", "路", "路", "路", "街", "街", "大道")
LANE_SUFFIXES = ("巷", "巷", "弄")
DIRECTIONS = {"E": "东", "W": "西", "S": "南", "N": "北", "M": "中"}
FORMER_STREET_NAMES = (
    "东方红路", "反修路", "向阳路", "卫东路", "红卫路", "立新路", "跃进路", "工农兵路", "红星路", "战备路",
    "大寨路", "永红路", "兴无路", "群英路", "新生路",
)
COMPOUND_WORDS = (
    "凤凰", "金色", "阳光", "锦绣", "翠苑", "碧水", "龙溪", "滨湖", "名都", "香樟", "紫金", "白鹭", "绿洲",
    "星汇", "东方", "西湖", "南山", "北辰", "明珠", "丽景", "嘉园", "华府", "御景", "书香", "桂园", "梅园",
    "兰亭", "竹苑", "荷塘", "枫林", "金桥", "银座", "太湖", "苕溪", "霅川", "吴兴", "水晶", "新城", "江南",
    "湖畔", "月河", "清河", "美林", "怡景", "馨园", "康城", "和美", "盛世", "天城", "碧桂", "景秀", "凯旋",
    "尚品", "如意", "福邸", "玉兰", "海棠", "香溪", "云水", "青山", "春江", "秋月", "百合", "丁香", "紫藤",
)
COMPOUND_HEADS = tuple("金银玉翠碧锦华丽嘉盛和康福瑞祥泰富龙凤江湖山水云月星阳春秋东西南北新")
COMPOUND_TAILS = tuple("城苑园庭都府湾岸邸居坊轩阁景境韵汇洲林溪")
COMPOUND_SUFFIXES = ("小区", "小区", "小区", "苑", "花园", "新村", "公寓")
SURNAMES = (
    "钱", "沈", "陈", "王", "张", "李", "吴", "朱", "姚", "徐", "施", "杨", "费", "潘", "凌", "戴", "俞", "严",
    "金", "蔡", "许", "孙", "周", "郑", "胡", "邱", "顾", "陆", "庄", "邵", "范", "谈", "闵", "章", "茅", "倪",
)
WATER_FORMS = ("浜", "墩", "埭", "兜", "湾", "漾", "圩", "港", "桥", "坝", "庄", "头", "村")
HILL_FORMS = ("坞", "岭", "岗", "坑", "山", "湾", "庄", "坪", "坞", "村")
NATURAL_PREFIXES = ("东", "西", "南", "北", "上", "下", "前", "后", "大", "小", "新", "老", "里", "外")
NATURAL_TAILS_WATER = ("庄", "埭", "浜", "兜", "湾", "港", "圩", "墩", "村", "桥")
NATURAL_TAILS_HILL = ("庄", "坞", "岭", "村", "湾", "山", "坑", "坪", "垅", "畈")
HILLY_COUNTIES = ("330523",)  # 安吉 (west of 长兴, 德清 and 吴兴 too, handled by longitude)
BRIDGE_NAMES = (
    "通津桥", "广惠桥", "万安桥", "太平桥", "永宁桥", "安定桥", "骆驼桥", "潘公桥", "仪凤桥", "霅溪桥",
    "洪济桥", "广济桥", "永安桥", "万寿桥", "化成桥", "众安桥", "寿昌桥", "隆兴桥", "登瀛桥", "集庆桥",
    "庆丰桥", "永济桥", "安澜桥", "望仙桥", "利济桥", "迎春桥", "三元桥", "长生桥", "福星桥", "兴福桥",
)
RIVER_NAMES = {
    "330502": ("霅溪", "龙溪", "环城河", "旄儿港", "长兜港", "妙西港"),
    "330503": ("頔塘", "南浔运河", "双林塘", "练溪", "菱湖塘", "息塘"),
    "330521": ("余英溪", "阜溪", "湘溪", "东苕溪德清段", "京杭运河德清段"),
    "330522": ("长兴港", "泗安塘", "合溪", "箬溪", "西苕溪长兴段"),
    "330523": ("西苕溪", "浒溪", "南溪", "晓墅港", "递铺港"),
}
HILL_NAMES = {
    "330502": ("弁山", "道场山", "岘山", "金盖山", "毗山", "何山", "杼山"),
    "330503": ("含山", "白雀山"),
    "330521": ("莫干山", "铜山", "塔山", "上柏山"),
    "330522": ("顾渚山", "仙山", "雉山", "明月峡山", "白岘山"),
    "330523": ("龙王山", "灵峰山", "玉磬山", "凤凰山", "天荒坪", "金钉子山"),
}


def pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def unique_name(used: set[str], make, *, tries: int = 200) -> str:
    """Call make() until a name not in used comes out; record it. (``used`` is only ever
    tested for membership, never iterated, so its order does not matter.)"""
    for _ in range(tries):
        name = make()
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("name space exhausted")


def street_name(rng: np.random.Generator, *, lane: bool = False, long: bool = False, word: str | None = None) -> str:
    base = word if word is not None else pick(rng, STREET_WORDS)
    if lane:
        return base + pick(rng, LANE_SUFFIXES)
    if long and not base.endswith("家") and rng.random() < 0.35:
        return base + "大道"
    return base + pick(rng, ROAD_SUFFIXES[:-1])


def compound_name(rng: np.random.Generator, community_short: str | None = None) -> str:
    r = rng.random()
    if community_short and r < 0.3:
        stem = community_short.removesuffix("社区")
        if 2 <= len(stem) <= 4:
            if stem[-1] in "村苑园":
                return stem + "小区"
            if rng.random() < 0.25:
                return stem + pick(rng, ("一", "二", "三", "四")) + "村"
            return stem + pick(rng, COMPOUND_SUFFIXES)
    if r < 0.65:
        return pick(rng, COMPOUND_WORDS) + pick(rng, COMPOUND_SUFFIXES)
    return pick(rng, COMPOUND_HEADS) + pick(rng, COMPOUND_TAILS) + pick(rng, COMPOUND_SUFFIXES)


def natural_village_name(rng: np.random.Generator, hilly: bool) -> str:
    r = rng.random()
    forms = HILL_FORMS if hilly else WATER_FORMS
    if r < 0.6:
        return pick(rng, SURNAMES) + "家" + pick(rng, forms)
    if r < 0.85:
        tails = NATURAL_TAILS_HILL if hilly else NATURAL_TAILS_WATER
        return pick(rng, NATURAL_PREFIXES) + pick(rng, tails)
    return pick(rng, SURNAMES) + pick(rng, forms) + pick(rng, ("里", "头", "上", "下", "口"))


def street_origin(name: str, kind: str, rng: np.random.Generator, *, extra: str = "") -> str:
    """来历/含义 text for a street."""
    stem = name
    for suf in ("大道", "路", "街", "巷", "弄"):
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
            break
    for d in "东西南北中":
        if stem.endswith(d) and len(stem) > 2:
            stem = stem[:-1]
            break
    year = int(rng.integers(1950, 2021))
    if kind == "ring":
        return f"沿旧城墙基址修建，环绕老城，按方位命名。{year}年定名。"
    if kind == "link":
        return f"连接{extra}，各取一字命名。{year}年建成通车。"
    if kind == "town":
        return f"因位于{extra}集镇而得名。{year}年命名。"
    if stem in WORD_MEANINGS:
        return f"{WORD_MEANINGS[stem]}，故名{name}。{year}年命名。"
    if stem.endswith("家"):
        return f"旧时{stem[0]}姓聚居于此，故名。"
    if stem[-1] in "山岭峰":
        return f"因通往{stem}而得名。{year}年命名。"
    if stem[-1] in "溪塘港河湖漾浜":
        return f"因沿{stem}而建，故名。{year}年命名。"
    if stem[-1] in "桥门楼庄坊":
        return f"因旧有{stem}而得名，沿用至今。"
    if kind == "lane":
        return f"老城巷弄，以旧有“{stem}”之名相沿，沿用至今。"
    return f"取“{stem}”之意，寓意吉祥美好。{year}年命名。"


def natural_village_origin(name: str, rng: np.random.Generator) -> str:
    if len(name) >= 3 and name[1] == "家":
        return f"明清时{name[0]}姓迁此聚居，依地形称{name}，相沿成名。"
    if name[0] in NATURAL_PREFIXES:
        return f"以所处方位得名，村落位于原村{ {'东': '东侧', '西': '西侧', '南': '南侧', '北': '北侧'}.get(name[0], '一隅') }。"
    return f"以{name[0]}姓及地形得名，沿用已久。"


def compound_origin(name: str, year: int) -> str:
    stem = name
    for suf in COMPOUND_SUFFIXES:
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
            break
    return f"{year}年建成的住宅小区，以“{stem}”命名，寓意居住环境美好。"
