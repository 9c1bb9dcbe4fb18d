//! Vocabulary and templates of the simulated corpus: domains, districts, per-domain problems,
//! generated place and person names, and the body/title builders that fill the template slots.

use super::rng::SimRng;

/// The ten key enforcement domains (重点行政执法领域).
pub const DOMAINS: [&str; 10] = [
    "社会治安",
    "城乡建设",
    "劳动保障",
    "卫生健康",
    "交通运输",
    "生态环境",
    "医疗保障",
    "教育培训",
    "城市管理",
    "市场监管",
];

/// The seven districts of Wuhu.
pub const DISTRICTS: [&str; 7] = [
    "镜湖区",
    "弋江区",
    "鸠江区",
    "湾沚区",
    "繁昌区",
    "南陵县",
    "无为市",
];

/// One concrete kind of problem of one domain, with the wording each channel uses for it.
pub struct Problem {
    pub domain: &'static str,
    pub name: &'static str,
    /// The hotline's own category wording (not one of the ten domains).
    pub hotline_category: &'static str,
    /// The message board's own field wording.
    pub board_domain: &'static str,
    /// Handling unit; `{d}` is replaced by the district.
    pub unit: &'static str,
    /// Kinds of place (name suffixes) where the problem happens.
    pub kinds: &'static [&'static str],
    /// Sentences that follow the place name directly: "{place}" + detail.
    pub details: &'static [&'static str],
    pub impacts: &'static [&'static str],
    /// Titles; `{p}` is the short place name.
    pub titles: &'static [&'static str],
}

macro_rules! problem {
    ($domain:expr, $name:expr, $cat:expr, $board:expr, $unit:expr, [$($k:expr),+], [$($d:expr),+], [$($i:expr),+], [$($t:expr),+]) => {
        Problem { domain: $domain, name: $name, hotline_category: $cat, board_domain: $board, unit: $unit,
            kinds: &[$($k),+], details: &[$($d),+], impacts: &[$($i),+], titles: &[$($t),+] }
    };
}

pub const PROBLEMS: &[Problem] = &[
    // 城市管理
    problem!(
        "城市管理",
        "占道经营",
        "市容环境-占道经营",
        "城管",
        "{d}城市管理局",
        ["农贸市场", "广场", "小区"],
        [
            "门口每天傍晚都有大量流动摊贩占道经营，烧烤摊、水果摊把人行道全部占满了",
            "一带的商户长期把货物和桌椅摆到人行道上经营，早晚高峰行人只能走机动车道",
            "周边夜市摊点越摆越多，三轮车和摊位把消防通道都堵住了"
        ],
        [
            "行人只能绕到机动车道上走，非常危险",
            "摊贩走后留下大量垃圾和油污，气味难闻",
            "救护车和消防车根本开不进来"
        ],
        [
            "{p}门口占道经营严重",
            "关于{p}周边流动摊贩占道的投诉",
            "{p}附近占道经营无人管理"
        ]
    ),
    problem!(
        "城市管理",
        "噪音扰民",
        "市容环境-噪声扰民",
        "城管",
        "{d}城市管理局",
        ["广场", "小区", "商业街"],
        [
            "旁边的广场舞音响声音开得特别大，每天晚上要跳到十点多",
            "附近一家KTV每天营业到凌晨两三点，音乐声和喧哗声非常大",
            "楼下商铺每天用大喇叭循环播放促销广告，从早上八点一直放到晚上"
        ],
        [
            "家里有老人和准备考试的孩子，根本无法休息",
            "居民长期睡不好觉，神经衰弱",
            "多次和对方沟通都没有用"
        ],
        [
            "{p}噪音扰民问题",
            "反映{p}噪声扰民",
            "{p}夜间噪音严重影响休息"
        ]
    ),
    problem!(
        "城市管理",
        "垃圾清运不及时",
        "市容环境-垃圾清运",
        "城管",
        "{d}城市管理局",
        ["小区", "村", "市场"],
        [
            "的垃圾桶已经好几天没有人清运，垃圾堆得满地都是",
            "的垃圾中转点堆放的垃圾长期无人清理，污水横流",
            "路边的生活垃圾和建筑垃圾混在一起堆了很久，一直没人拉走"
        ],
        [
            "夏天蚊蝇滋生，臭气熏天",
            "居民出门都要捂着鼻子",
            "严重影响周边环境卫生"
        ],
        [
            "{p}垃圾长期无人清运",
            "关于{p}垃圾堆积的问题",
            "{p}垃圾清运不及时"
        ]
    ),
    problem!(
        "城市管理",
        "路面坑洼",
        "市政设施-道路破损",
        "城建",
        "{d}城市管理局",
        ["路口", "小区", "公交站"],
        [
            "附近的路面破损严重，坑坑洼洼，下雨天积水有十几公分深",
            "这一段道路的人行道地砖大面积松动塌陷，一踩就溅一身泥水",
            "门前的机动车道出现了好几个大坑，井盖也下沉了"
        ],
        [
            "已经有好几位骑电动车的市民在这里摔倒受伤",
            "晚上路灯又暗，车辆经过很容易出事故",
            "老人和孩子走路都要特别小心"
        ],
        [
            "{p}附近道路坑洼不平",
            "请尽快修复{p}破损路面",
            "{p}路面塌陷存在安全隐患"
        ]
    ),
    // 生态环境
    problem!(
        "生态环境",
        "搅拌站粉尘",
        "环境保护-大气污染",
        "环保",
        "芜湖市生态环境局{d}分局",
        ["搅拌站"],
        [
            "的混凝土搅拌站粉尘污染严重，周围的树叶、车顶和窗台上全是灰",
            "生产时不做任何遮挡和喷淋，砂石料露天堆放，风一吹到处都是粉尘",
            "的运输罐车进出不冲洗，道路上全是泥浆和扬尘"
        ],
        [
            "附近居民家里不敢开窗，很多人咳嗽、咽喉发炎",
            "晾在外面的衣服一会儿就落满了灰",
            "周边小学的孩子每天都在粉尘里上学"
        ],
        ["{p}粉尘污染扰民", "投诉{p}扬尘严重", "{p}违规生产粉尘污染"]
    ),
    problem!(
        "生态环境",
        "河道污水",
        "环境保护-水污染",
        "环保",
        "芜湖市生态环境局{d}分局",
        ["村", "小区", "工业园"],
        [
            "旁边的河道里有污水直排，水面发黑发臭，还漂着死鱼",
            "附近有企业夜里偷偷往河沟里排放污水，河水颜色一会儿红一会儿黄",
            "的雨水管里常年流出生活污水，直接排进河里"
        ],
        [
            "整条河都臭了，夏天根本不敢开窗",
            "下游的农田灌溉都受到了影响",
            "附近居民担心地下水也被污染"
        ],
        [
            "{p}附近河道污水直排",
            "关于{p}河水发黑发臭的问题",
            "{p}偷排污水"
        ]
    ),
    problem!(
        "生态环境",
        "夜间施工噪声",
        "环境保护-噪声污染",
        "环保",
        "芜湖市生态环境局{d}分局",
        ["工地"],
        [
            "每天晚上十一点以后还在施工，打桩机和渣土车的声音非常大",
            "经常通宵浇筑混凝土，施工噪声和灯光一直持续到凌晨",
            "夜间违规施工，切割钢筋的声音刺耳，没有看到任何夜间施工许可公示"
        ],
        [
            "周边几栋楼的居民都无法入睡",
            "第二天上班上学都没有精神",
            "打了好几次电话，当晚停一会儿又继续干"
        ],
        [
            "{p}夜间施工扰民",
            "投诉{p}深夜违规施工",
            "{p}夜间施工噪声严重"
        ]
    ),
    problem!(
        "生态环境",
        "餐饮油烟",
        "环境保护-油烟污染",
        "环保",
        "{d}城市管理局",
        ["小区", "商业街"],
        [
            "楼下的几家饭店油烟直排，没有安装油烟净化设备",
            "底商烧烤店的排烟管道直接对着居民楼，每天傍晚浓烟滚滚"
        ],
        [
            "楼上住户的窗户和墙面全是油污",
            "家里的老人有哮喘，一闻到油烟就喘不上气"
        ],
        ["{p}餐饮油烟扰民", "{p}底商油烟直排"]
    ),
    // 劳动保障
    problem!(
        "劳动保障",
        "拖欠工资",
        "劳动保障-欠薪",
        "劳动",
        "{d}人力资源和社会保障局",
        ["工地", "建筑工程有限公司", "科技有限公司"],
        [
            "的施工单位拖欠我们农民工工资，一共二十多个人，总计十几万元",
            "，我在这里干活，老板已经连续三个月没有发工资，一直说资金周转不开",
            "的项目早就完工了，但包工头拿了工程款就联系不上，我们的工钱一分没拿到"
        ],
        [
            "马上要过年了，家里老人孩子都等着这笔钱",
            "我们去讨要了很多次，对方总是推脱",
            "房租都交不起了，生活非常困难"
        ],
        ["{p}拖欠工资", "请求帮助追讨{p}欠薪", "{p}拖欠农民工工资"]
    ),
    problem!(
        "劳动保障",
        "未缴社保",
        "劳动保障-社会保险",
        "劳动",
        "{d}人力资源和社会保障局",
        ["科技有限公司", "商贸有限公司", "酒店"],
        [
            "的用人单位一直不给员工缴纳社会保险，入职时也没有签劳动合同",
            "，公司从去年开始就停缴了我们的社保，工资条上却照样扣钱"
        ],
        ["现在看病报销都成了问题", "很多老员工担心以后退休没有保障"],
        ["{p}不缴纳社保", "投诉{p}停缴社会保险"]
    ),
    problem!(
        "劳动保障",
        "违法解除劳动合同",
        "劳动保障-劳动关系",
        "劳动",
        "{d}人力资源和社会保障局",
        ["商贸有限公司", "电子有限公司", "超市"],
        [
            "无故辞退我和其他几名员工，不给任何经济补偿",
            "以调岗为名逼员工自己离职，拒绝支付补偿金"
        ],
        [
            "我在这里干了六年，说辞退就辞退",
            "去公司协商，人事直接把我们赶了出来"
        ],
        ["{p}违法辞退员工", "{p}拒付经济补偿"]
    ),
    // 城乡建设
    problem!(
        "城乡建设",
        "物业收费",
        "住房城乡建设-物业管理",
        "城建",
        "{d}住房和城乡建设局",
        ["小区", "花园", "家园"],
        [
            "的物业公司擅自上调物业费，从每平方一块二涨到一块八，也没有召开业主大会",
            "的物业收了物业费却不提供服务，电梯经常坏，公共区域没人打扫",
            "的物业强制业主缴纳停车管理费和二次供水费，不交就不给办门禁卡"
        ],
        [
            "业主们意见非常大",
            "物业还威胁说不交钱就停水停电",
            "找社区协调了好几次都没有结果"
        ],
        [
            "{p}物业乱收费",
            "关于{p}物业费上涨的投诉",
            "{p}物业服务差还涨价"
        ]
    ),
    problem!(
        "城乡建设",
        "违建",
        "住房城乡建设-违法建设",
        "城建",
        "{d}住房和城乡建设局",
        ["小区", "花园", "村"],
        [
            "有业主在楼顶私自搭建彩钢瓦房，还在一楼圈占绿化带建院子",
            "一楼商户私自打通承重墙、向外扩建，严重影响整栋楼的安全",
            "有人在公共绿地上违法搭建房屋，已经盖了两层"
        ],
        [
            "存在很大的安全隐患",
            "其他住户也开始跟着搭建",
            "举报了很久一直没有拆除"
        ],
        ["{p}违章搭建", "举报{p}违法建设", "{p}私搭乱建无人管"]
    ),
    problem!(
        "城乡建设",
        "房屋质量",
        "住房城乡建设-房屋质量",
        "城建",
        "{d}住房和城乡建设局",
        ["花园", "小区", "家园"],
        [
            "的新交付房屋多户出现墙体开裂、窗台渗水",
            "交房不到一年，地下车库就大面积漏水，外墙砖也开始脱落"
        ],
        [
            "开发商只是派人简单刷了一下，根本没有解决",
            "担心房屋结构有问题"
        ],
        ["{p}房屋质量问题", "{p}交房后墙体开裂渗水"]
    ),
    // 交通运输
    problem!(
        "交通运输",
        "出租车拒载",
        "交通运输-出租车",
        "交通",
        "芜湖市交通运输局",
        ["汽车站", "火车站", "医院"],
        [
            "门口的出租车经常拒载、挑客，不打表，短途直接不拉",
            "排队的出租车司机拼客议价，去市区要价五六十元"
        ],
        ["带着老人和行李打不到车", "外地游客对芜湖的印象很差"],
        ["{p}出租车拒载", "{p}出租车不打表乱要价"]
    ),
    problem!(
        "交通运输",
        "公交班次",
        "交通运输-公交服务",
        "交通",
        "芜湖市交通运输局",
        ["公交站", "小区", "工业园"],
        [
            "的公交线路班次太少，早高峰要等四十多分钟才来一辆",
            "的公交车末班车太早，晚上七点以后就没有车了",
            "这一站的公交车经常不进站直接开走"
        ],
        [
            "上班族每天都迟到",
            "学生放学回家只能步行很远",
            "附近几个小区几千户居民出行困难"
        ],
        ["{p}公交班次太少", "建议增加{p}公交班次", "{p}公交不进站"]
    ),
    problem!(
        "交通运输",
        "渣土车超载",
        "交通运输-货运超限",
        "交通",
        "芜湖市交通运输局",
        ["路口", "工地"],
        [
            "每天有大量渣土车超载通行，沿路洒落泥土碎石",
            "附近的渣土车晚上闯红灯、超速行驶，车斗也不覆盖"
        ],
        ["路面被压坏了好几处", "非常危险，已经发生过剐蹭事故"],
        ["{p}渣土车超载", "{p}渣土车违规行驶"]
    ),
    // 卫生健康
    problem!(
        "卫生健康",
        "无证行医",
        "卫生健康-医疗机构监管",
        "卫生",
        "{d}卫生健康委员会",
        ["诊所", "村", "小区"],
        [
            "附近有一家小诊所疑似无证行医，还给病人输液打针",
            "有人开了个按摩店，对外宣称能治各种病，还卖所谓的特效药"
        ],
        ["不少老年人上当受骗", "出了事故谁来负责"],
        ["{p}疑似无证行医", "举报{p}非法行医"]
    ),
    problem!(
        "卫生健康",
        "医院服务",
        "卫生健康-医疗服务",
        "卫生",
        "{d}卫生健康委员会",
        ["医院", "卫生院"],
        [
            "挂号排队时间太长，工作人员态度恶劣，问什么都不耐烦",
            "急诊室晚上只有一名医生值班，病人等了三个多小时没人看"
        ],
        ["我父亲病情耽误了", "希望医院改进服务"],
        ["{p}服务态度差", "反映{p}就医难"]
    ),
    problem!(
        "卫生健康",
        "公厕卫生",
        "卫生健康-公共卫生",
        "卫生",
        "{d}城市管理局",
        ["公园", "市场", "广场"],
        [
            "的公共厕所长期无人打扫，臭气熏天，洗手池也坏了",
            "的公厕经常锁门，周边群众如厕非常不便"
        ],
        ["来往的游客和居民意见很大", "影响文明城市形象"],
        ["{p}公厕卫生差", "{p}公共厕所无人管理"]
    ),
    // 医疗保障
    problem!(
        "医疗保障",
        "医保报销",
        "医疗保障-待遇结算",
        "医疗",
        "{d}医疗保障局",
        ["医院", "卫生院"],
        [
            "住院的费用医保报销比例和政策规定不符，结算时多算了个人自付部分",
            "门诊慢特病的报销一直办不下来，材料交了三次都说不全"
        ],
        ["家里经济本来就困难", "来回跑了很多趟，身体吃不消"],
        ["{p}医保报销问题", "咨询{p}医保结算比例"]
    ),
    problem!(
        "医疗保障",
        "药店违规刷卡",
        "医疗保障-基金监管",
        "医疗",
        "{d}医疗保障局",
        ["药店", "大药房"],
        [
            "用医保卡给人刷生活用品，还诱导老人刷卡购买保健品",
            "的店员说医保卡里的钱年底会清零，让大家赶紧刷卡买东西"
        ],
        ["这是在套取医保基金", "很多老人被骗"],
        ["举报{p}违规刷医保卡", "{p}套刷医保"]
    ),
    // 教育培训
    problem!(
        "教育培训",
        "培训机构跑路",
        "教育-校外培训",
        "教育",
        "{d}教育局",
        ["培训学校", "教育咨询有限公司"],
        [
            "预收了一年的学费后突然关门，老板电话也打不通了",
            "以办卡优惠为名让家长一次性交了两万多元课时费，现在停课不退费"
        ],
        ["几十名家长的钱都打了水漂", "孩子的课程也耽误了"],
        ["{p}收费后关门跑路", "请求追回{p}预付学费"]
    ),
    problem!(
        "教育培训",
        "学校乱收费",
        "教育-收费管理",
        "教育",
        "{d}教育局",
        ["小学", "中学", "幼儿园"],
        [
            "以各种名义收取资料费、补课费，还强制订购教辅",
            "假期组织有偿补课，不参加的学生老师就区别对待"
        ],
        ["家长们敢怒不敢言", "加重了家庭负担"],
        ["{p}违规收费", "{p}强制补课收费"]
    ),
    problem!(
        "教育培训",
        "校门口交通",
        "教育-校园周边安全",
        "教育",
        "{d}教育局",
        ["小学", "幼儿园", "中学"],
        [
            "门口上下学时段车辆乱停乱放，接送的家长和电动车把路完全堵死",
            "门口没有人行横道和减速带，车速很快"
        ],
        ["孩子们过马路非常危险", "上个月就有学生被车刮倒"],
        ["{p}门口交通拥堵", "建议{p}门口设置减速带"]
    ),
    // 社会治安
    problem!(
        "社会治安",
        "聚众赌博",
        "公共安全-治安管理",
        "治安",
        "芜湖市公安局{d}分局",
        ["小区", "村", "茶楼"],
        [
            "的棋牌室里常年有人聚众赌博，输赢很大，深夜还很吵",
            "附近有人每天下午聚在一起打牌赌钱，还有放高利贷的"
        ],
        ["已经有家庭因为赌博闹离婚", "周边环境乌烟瘴气"],
        ["举报{p}聚众赌博", "{p}棋牌室涉赌"]
    ),
    problem!(
        "社会治安",
        "电动车被盗",
        "公共安全-盗窃",
        "治安",
        "芜湖市公安局{d}分局",
        ["小区", "花园", "学校"],
        [
            "最近一个月电动车频繁被盗，小区的监控也是坏的",
            "的车棚接连发生电瓶被偷的事情，物业说不归他们管"
        ],
        ["大家都人心惶惶", "报警后一直没有消息"],
        ["{p}电动车频繁被盗", "{p}治安状况差"]
    ),
    problem!(
        "社会治安",
        "传销聚集",
        "公共安全-非法传销",
        "治安",
        "芜湖市公安局{d}分局",
        ["小区", "花园"],
        [
            "的几套出租房里住了很多外地年轻人，每天集中开会上课，疑似传销",
            "附近有人以高额回报为名拉老年人投资，还组织讲座送鸡蛋"
        ],
        ["很多老人的养老钱被骗了", "担心出现安全问题"],
        ["{p}疑似传销窝点", "举报{p}非法集资"]
    ),
    // 市场监管
    problem!(
        "市场监管",
        "食品安全",
        "市场监管-食品安全",
        "市场",
        "{d}市场监督管理局",
        ["饭店", "农贸市场", "超市"],
        [
            "的一家饭店后厨卫生很差，我们全家在这里吃饭后都出现了腹泻呕吐",
            "里卖的熟食没有任何防蝇防尘措施，还有过期食品在售",
            "售卖的猪肉没有检疫章，疑似注水肉"
        ],
        [
            "去医院花了好几百元",
            "担心更多人吃出问题",
            "商家拒绝承认也不赔偿"
        ],
        ["{p}食品安全问题", "举报{p}销售过期食品", "{p}卫生不合格"]
    ),
    problem!(
        "市场监管",
        "价格欺诈",
        "市场监管-价格监管",
        "市场",
        "{d}市场监督管理局",
        ["超市", "商场", "农贸市场"],
        [
            "的商家明码标价和结账价格不一致，结账时多收钱",
            "搞促销先涨价再打折，原价标签下面还贴着更低的旧价签"
        ],
        ["找商家理论，对方态度蛮横", "明显是在欺骗消费者"],
        ["{p}价格欺诈", "投诉{p}标价与结算价不符"]
    ),
    problem!(
        "市场监管",
        "预付卡跑路",
        "市场监管-消费维权",
        "市场",
        "{d}市场监督管理局",
        ["健身房", "美容店", "洗车店"],
        [
            "办了预付卡之后突然关门停业，卡里还有三千多元没消费",
            "卖了几百张会员卡，现在换了老板说以前的卡不认了"
        ],
        ["很多消费者都受骗了", "老板微信把我们都拉黑了"],
        ["{p}办卡后跑路", "{p}预付卡不退款"]
    ),
];

const SYLLABLES: &[&str] = &[
    "翠", "湖", "锦", "绣", "金", "桥", "华", "庭", "阳", "光", "新", "城", "东", "方", "明", "珠",
    "瑞", "丰", "兴", "隆", "春", "晖", "江", "南", "和", "平", "福", "泰", "书", "香", "凤", "鸣",
    "龙", "山", "柳", "岸", "青", "石", "银", "湾", "嘉", "景", "悦", "天", "成", "康", "乐", "长",
    "宁", "赭", "鸠", "芳", "荷", "汀", "怡", "家", "盛", "安", "德", "润",
];
const ROAD_SUFFIXES: &[&str] = &["路", "大道", "街", "东路", "西路", "北路", "中路"];
const SURNAMES: &[&str] = &[
    "张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "程", "曹",
    "袁", "邓", "许", "傅", "沈", "曾", "彭", "汪",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "建", "国", "志", "文", "海", "红",
    "小", "云", "春", "德", "永", "晓", "金", "宏",
];
const PHONE_PREFIXES: &[&str] = &[
    "138", "139", "135", "136", "137", "150", "151", "152", "158", "159", "186", "187", "188",
    "177", "180", "181", "189", "199", "133", "153",
];
pub const DURATIONS: &[&str] = &[
    "一个多月",
    "两个星期",
    "半年多",
    "三个多月",
    "好几年",
    "十多天",
    "一年多",
    "大半年",
];

const OPENERS: &[&str] = &[
    "您好，我要反映一个问题：",
    "各位领导好，",
    "本人是{d}的居民，",
    "我家住在附近，",
    "尊敬的领导：",
    "你好，",
    "我是附近的一名普通市民，想反映",
    "我们是周边小区的业主，",
    "",
];
const DURATION_SENTENCES: &[&str] = &[
    "这种情况已经持续{t}了。",
    "{t}以来一直是这样。",
    "从{t}前就开始了，到现在也没有改善。",
    "前前后后已经有{t}了。",
];
const ATTEMPTS: &[&str] = &[
    "之前也打过电话反映，但一直没有得到解决。",
    "曾经向社区和物业反映过多次，对方互相推诿。",
    "街道说不归他们管，让我们找城管，城管又说要找住建，到底归谁管？",
    "也去现场找过负责人，对方根本不理睬。",
    "在网上也留过言，至今没有回复。",
    "",
];
const FILLERS: &[&str] = &[
    "周边居民意见很大。",
    "附近还有一所小学，孩子们每天都要经过这里。",
    "白天晚上都是这样，尤其是周末更严重。",
    "我们拍了照片和视频，可以提供给相关部门。",
    "附近住的大多是老人，他们不会上网，也不知道该找谁。",
    "这个问题不是一家两家的事，整片区域的群众都深受其害。",
    "希望这次能够真正落实，不要再走过场。",
    "之前有关部门来看过一次，但过几天又恢复原样了。",
    "大家都是普通老百姓，实在没有别的办法，只能在这里反映。",
    "我们理解相关部门工作很忙，但这件事确实拖得太久了。",
    "现在天气越来越热，情况只会越来越严重。",
    "很多邻居都说要一起反映。",
];
const DEMANDS: &[&str] = &[
    "恳请有关部门尽快处理。",
    "希望相关部门高度重视，早日解决，还老百姓一个良好的生活环境。",
    "请有关部门尽快派人到现场查看，依法处理。",
    "恳请领导关注，督促责任单位落实整改。",
    "希望能给一个明确的答复和处理时限。",
    "请求政府出面协调解决，谢谢！",
];

/// A generated person's name.
pub fn person_name(rng: &mut SimRng) -> String {
    let mut s = String::from(rng.pick(SURNAMES));
    s.push_str(rng.pick(GIVEN));
    if rng.chance(0.7) {
        s.push_str(rng.pick(GIVEN));
    }
    s
}

/// The masked or polite form a person uses on public boards (张**, 张先生, 张女士).
pub fn public_name(name: &str, rng: &mut SimRng) -> String {
    let surname: String = name.chars().take(1).collect();
    match rng.below(3) {
        0 => format!("{surname}**"),
        1 => format!("{surname}先生"),
        _ => format!("{surname}女士"),
    }
}

pub fn mobile(rng: &mut SimRng) -> String {
    format!("{}{:08}", rng.pick(PHONE_PREFIXES), rng.below(100_000_000))
}

pub fn nickname(rng: &mut SimRng) -> String {
    match rng.below(3) {
        0 => format!("芜湖居民{:04}", rng.below(10_000)),
        1 => format!(
            "{}{}{:02}",
            rng.pick(SYLLABLES),
            rng.pick(SYLLABLES),
            rng.below(100)
        ),
        _ => format!(
            "江城{}{}",
            rng.pick(SURNAMES),
            rng.pick(&["先生", "女士", "老师", "师傅"])
        ),
    }
}

fn two_syllables(rng: &mut SimRng) -> String {
    let a = rng.pick(SYLLABLES);
    let mut b = rng.pick(SYLLABLES);
    while b == a {
        b = rng.pick(SYLLABLES);
    }
    format!("{a}{b}")
}

/// A generated place: `district + road + point of interest`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    pub district: String,
    pub road: String,
    /// Short name of the point of interest (e.g. 锦绣花园), used in titles.
    pub poi: String,
}

impl Place {
    pub fn generate(rng: &mut SimRng, district: &str, problem: &Problem) -> Place {
        let road = format!("{}{}", two_syllables(rng), rng.pick(ROAD_SUFFIXES));
        let kind = rng.pick(problem.kinds);
        let poi = match kind {
            "路口" => format!(
                "{}与{}{}交叉口",
                road,
                two_syllables(rng),
                rng.pick(ROAD_SUFFIXES)
            ),
            "公交站" => format!(
                "{}{}公交站",
                two_syllables(rng),
                rng.pick(&["站", "小区站", "路口站"])
            ),
            k => format!("{}{}", two_syllables(rng), k),
        };
        Place {
            district: district.to_string(),
            road,
            poi,
        }
    }

    /// The full location, e.g. 镜湖区翠湖路锦绣花园.
    pub fn full(&self) -> String {
        if self.poi.starts_with(&self.road) {
            format!("{}{}", self.district, self.poi)
        } else {
            format!("{}{}{}", self.district, self.road, self.poi)
        }
    }
}

/// What the body builder needs to know about one complaint.
pub struct BodySpec<'a> {
    pub problem: &'a Problem,
    pub place: &'a Place,
    /// Name and phone to mention in the body, if any.
    pub contact: Option<(&'a str, &'a str)>,
    /// "这是我第N次反映" for repeat complainants.
    pub repeat_no: Option<usize>,
}

/// A complaint body of 50–800 characters (most 100–400) that names the place.
pub fn body(rng: &mut SimRng, spec: &BodySpec<'_>) -> String {
    let p = spec.problem;
    let loc = spec.place.full();
    let mut parts: Vec<String> = Vec::new();
    let opener = rng.pick(OPENERS).replace("{d}", &spec.place.district);
    parts.push(format!("{opener}{loc}{}。", rng.pick(p.details)));
    if rng.chance(0.8) {
        parts.push(
            rng.pick(DURATION_SENTENCES)
                .replace("{t}", rng.pick(DURATIONS)),
        );
    }
    let main_impact = rng.pick(p.impacts);
    parts.push(format!("{main_impact}。"));
    if let Some(n) = spec.repeat_no {
        parts.push(format!(
            "这已经是我第{n}次反映这个问题了，{}",
            rng.pick(&["每次都说在处理。", "到现在还是老样子。", "始终没有结果。"])
        ));
    }
    let attempt = rng.pick(ATTEMPTS);
    if !attempt.is_empty() {
        parts.push(attempt.to_string());
    }
    // Length profile: mostly medium, some short, a few long.
    let extra = match rng.weighted(&[15, 70, 15]) {
        0 => 0,
        1 => rng.range(1, 4) as usize,
        _ => rng.range(6, 12) as usize,
    };
    // Extra sentences drawn without replacement, so a text never repeats itself.
    let mut pool: Vec<String> = FILLERS.iter().map(|s| s.to_string()).collect();
    for impact in p.impacts.iter().filter(|i| **i != main_impact) {
        pool.push(format!(
            "{}{impact}。",
            rng.pick(&["另外，", "而且", "更严重的是，", "还有就是"])
        ));
    }
    pool.push(format!(
        "具体位置就在{loc}，{}。",
        rng.pick(p.details).trim_start_matches(['的', '，'])
    ));
    rng.shuffle(&mut pool);
    parts.extend(pool.into_iter().take(extra));
    parts.push(rng.pick(DEMANDS).to_string());
    if let Some((name, phone)) = spec.contact {
        parts.push(match rng.below(3) {
            0 => format!("我的联系电话是{phone}。"),
            1 => format!("联系人：{name}，电话{phone}。"),
            _ => format!("我叫{name}，有问题可以打{phone}联系我。"),
        });
    }
    let mut text = parts.concat();
    while text.chars().count() < 50 {
        text.push_str(rng.pick(FILLERS));
    }
    // Headroom below 800 for the whitespace that roughening and respacing may add later.
    truncate_sentences(&text, 770)
}

/// Cuts at the last sentence end (。！？) within `max` characters.
pub fn truncate_sentences(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    match head.rfind(['。', '！', '？']) {
        Some(i) => head[..i + '。'.len_utf8()].to_string(),
        None => head,
    }
}

pub fn title(rng: &mut SimRng, problem: &Problem, place: &Place) -> String {
    rng.pick(problem.titles).replace("{p}", &place.poi)
}

/// Full-width form of ASCII digits and letters (what normalization must undo).
pub fn to_full_width(s: &str, rng: &mut SimRng, p: f64) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() && rng.chance(p) {
                char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Adds whitespace oddities that collapse away under whitespace normalization:
/// leading/trailing spaces, an ideographic space, a doubled line break after a sentence.
pub fn odd_whitespace(s: &str, rng: &mut SimRng) -> String {
    let mut out = String::new();
    if rng.chance(0.5) {
        out.push_str(rng.pick(&["  ", "\u{3000}", " \t"]));
    }
    let mut breaks = 0;
    for c in s.chars() {
        out.push(c);
        if c == '。' && breaks < 2 && rng.chance(0.3) {
            out.push_str(rng.pick(&[" ", "\r\n", "\u{3000}", "  "]));
            breaks += 1;
        }
    }
    if rng.chance(0.5) || out == s {
        out.push_str(rng.pick(&[" ", "\u{3000}", "\n"]));
    }
    out
}

/// Exact-copy respacing: widens existing whitespace runs and adds leading/trailing whitespace,
/// so the copy differs in bytes but equals the original after trim + whitespace collapse.
pub fn respace(s: &str, rng: &mut SimRng) -> String {
    let mut out = String::from(rng.pick(&["", " ", "\u{3000}"]));
    for c in s.chars() {
        out.push(c);
        if c.is_whitespace() && rng.chance(0.7) {
            out.push_str(rng.pick(&[" ", "\u{3000}", "\t"]));
        }
    }
    out.push_str(rng.pick(&[" ", "\u{3000}", "\n", "  "]));
    out
}

/// Near-duplicate: the same complaint with one sentence added, removed or reworded.
pub fn near_duplicate(rng: &mut SimRng, text: &str) -> String {
    let mut sentences: Vec<String> = text
        .split_inclusive(['。', '！', '？'])
        .map(str::to_string)
        .collect();
    match rng.below(3) {
        0 => {
            let at = rng.range(1, sentences.len() as i64) as usize;
            sentences.insert(
                at.min(sentences.len()),
                rng.pick(&[
                    "我在别的渠道也反映过，一直没有回音，所以再反映一次。",
                    "麻烦尽快处理，谢谢。",
                    "情况非常紧急，请重视。",
                ])
                .to_string(),
            );
        }
        1 if sentences.len() > 3 => {
            let at = rng.range(1, sentences.len() as i64 - 2) as usize;
            sentences.remove(at);
        }
        _ => {
            if let Some(last) = sentences.last_mut() {
                *last = rng.pick(DEMANDS).to_string();
            }
            sentences.push("再次恳请处理。".to_string());
        }
    }
    let text = sentences.concat();
    let text = if text.chars().count() < 50 {
        format!("{text}{}", FILLERS[0])
    } else {
        text
    };
    truncate_sentences(&text, 800)
}

/// Full-width → half-width and whitespace collapse: the equality used for exact resubmissions.
pub fn normalize_for_compare(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            c => c,
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_has_problems_and_every_problem_a_known_domain() {
        for d in DOMAINS {
            assert!(PROBLEMS.iter().any(|p| p.domain == d), "no problem for {d}");
        }
        assert!(PROBLEMS.iter().all(|p| DOMAINS.contains(&p.domain)));
    }

    #[test]
    fn full_width_and_respacing_normalize_back() {
        let mut rng = SimRng::new(3);
        let s = "我的电话是13812345678。 路段K12处。请处理。";
        for _ in 0..20 {
            let odd = respace(&to_full_width(s, &mut rng, 0.7), &mut rng);
            assert_ne!(odd, s);
            assert_eq!(normalize_for_compare(&odd), normalize_for_compare(s));
        }
    }

    #[test]
    fn truncation_keeps_whole_sentences() {
        let t = truncate_sentences(&"一二三四五。".repeat(200), 800);
        assert!(t.chars().count() <= 800 && t.ends_with('。'));
    }
}
