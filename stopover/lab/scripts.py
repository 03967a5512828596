"""Writing the lab's languages in other scripts: deterministic, reversible transliteration.

This module owns the lab's scripts. Each `Script` rewrites Latin-letter words
into another writing system and back. Real transfer loss is dominated by
script and segmentation, not word order (DESIGN.md, "Measured for the
typology lab"), so the variants must be able to leave the Latin alphabet.

How each script encodes a lower-case Latin word (greedy, longest chunk first):

- Cyrl, Grek: letter by letter onto one letter each (cased: capitals stay
  capitals).
- Deva: a consonant followed by a vowel becomes the consonant letter plus the
  vowel sign (matra): "ka" -> "का"; other letters become consonant letters or
  independent vowels.
- Arab, Thai: letter by letter onto one letter each.
- Kana (Japanese-like): a consonant-vowel pair with a katakana syllable becomes
  that syllable ("ka" -> "カ"); a vowel alone becomes a katakana vowel; a
  consonant alone becomes a hiragana letter ("n" -> "ん").
- Hani (Chinese-like), Hang (Korean-like): every pair of letters becomes one
  character (676 pairs), a final odd letter one of 26 further characters.
  The 702 characters of each are the highest-scoring single-character
  pieces of that block in the XLM-R SentencePiece vocabulary (the embedded
  encoder's), so the encoder never sees an unknown character.

Every glyph decodes to exactly one Latin chunk, so `untransliterate` is a
left-to-right lookup and `untransliterate(transliterate(w, s), s) == w` for
every word of Latin letters, digits and punctuation; caseless scripts (all
but Latn, Cyrl, Grek) lower-case first, so there the round trip returns
`w.lower()`. Sentence punctuation is mapped to the script's own marks
("." -> "。" / "।"; "?" -> "？" / "؟"). Every glyph used is a piece of the
XLM-R vocabulary (tests/lab checks this when the embedded encoder is present).
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field

LETTERS = string.ascii_lowercase
VOWELS = "aeiou"
CONSONANTS = "".join(c for c in LETTERS if c not in VOWELS)

HAN_GLYPHS = (
    "的在和了是有年人中不大上月我日一到等他也就地你以对出要为及而與小下会用与都但性多被為好子新高可之家所本時者水會着能分来前"
    "说手或去她将後名最心后这得时天更从三化外對行金里力生想再又向看自市法來很事做山入于將把点其道全回於打文花比度說部美特那并"
    "方無由海起成光重長面這斯元身先車国过著已路还同至内二作量台个拉正如物店主並老走您加德白口安從感区開原過车品呢機无定它位點"
    "长局头王西万跟利通明让林讓发合克吃見各学期四頭太近神开區內当使色才愛個公商次受吧書因南型卡第送意流数城体给快相還低女何该"
    "發科眼學器線工信知尔約率五動片情版取超代場省教机只真站式國米像火平請集立死包号接空放此給表民風北病马解球食言直保院住阿笑"
    "啊少當半共建网周達電未首格门木两石客玩音目交制收落田却强世深便场布社每常油房理選件管总没李风任字百話古清黑買星東波間动称"
    "進款张巴爱反早处熱氣非千兩即声条州往體气味切馬血华號修若今夜失越指排找电連六萬門室業精男村求八防士處料应香帶展案肉青完曾"
    "照报军线班網带語政吗们單私达足朝張初书查轉應队形奇图座基質写活總差思強曲除圖源雨请提江土单該干卻報业校屋钱酒且港算叫數皮"
    "届短樂进組毛推战野素派冷章选听致值價調福菜華约改難種街居英具紅亚级急服則微付配板系實河票问拍程島占余间博存十気茶望底按转"
    "红洗沒均见歌遠投爾留权副親嗎某跑九別苦視員列拿买热倒语界救衣群支难段经師限們影雷七税演实變戰試尼痛館根退角命景草春令装必"
    "裡端罗别连運造極問东現员党整費雪沙节股岁離云步川夫例县夏游隊官牌節然級助亦晚果牛套远需權几軍组粉掉志儿升则遊破吉治费价職"
    "傳边武雙假坐裝架龙迷核变楼經酸額層念滿寫背航守船易聽症產円週持乐双探仍龍引關邊纳类森"
)
HANGUL_GLYPHS = (
    "의을이에를은가는한수도고로지과기인일다해와리사시스어자서할그년주정장대및게만아성상라나원부전트화적월소진드동면비산구제등"
    "선치요된유신용중명미세마보위내단개더회실오식하차것관조우분야안재방히무호니러당공들경모연여김문물형영르국때려학며금후거말"
    "생프저체권법양바행점두워터피즈천잘계파본디업포종건질티타크운던글레발입역민카감음교설간강통료남토현심임루석출론력노버배직"
    "반태알란래박불색급품청린예데매군속열집션작큰증격류립키언블북절판네브코목승각별든온플손달또표님길림날될못약엔범환량난초근"
    "복술외총희백겨함익향되처애볼너살편준독최결져령층효없병존창커채번추평있첫변투축으름링까걸줄혜락합울망곡철새릴택랑녀책패억"
    "뒤널메액규례팅숙완눈올퍼좀항혼렌족봉율광맞담틀씨황페쪽탄않곳츠돼죠런능흥움갈팀친테록참베끝쿠몇찰머몸허맨습취접송른킹특덕"
    "엄셔순왜충얼슈었먹잡했쉬측필돌막십귀악착긴딩폭침협훈탈암꼭께삼같겠갑객옥골탁쇼확슬밀웹쳐왕몰압클콘률응극헌냐홀뉴혈욕낸쓰"
    "았넘홈활잠컨쟁벨푸농꿈끼깨폰풍셨득힘찬죽척징캐견홍셀논련칠였갖럼씩누센싱엘칭닝앞앤즉케짜촌뜻따랜팔람됐칼밤찾윤값궁놀느염"
    "밥째벽릭틴곤텔굴맛봐늘졌뿐폐납념듯롭핑팬뭐몬육짐균넷샤떠핵돈샵휴컵좋풀휘답컬콜빠킨솔텐검뜨녹붙슨먼숨낙렸싸큐턴읽찍앱컴룸"
    "촉짓춘얻넣톤핀튼폴싶빈헤렉벌맥흡섭꽃멘롤탕잔맹빙팩좌험벤펜꼬닫퇴났섬혀빛젤픽많낼앨짝꾸둔혹웨텍탑꺼즐듀겁낮캠끌밴롱삶갔빌"
    "괴힌딸옆흑흐힐략헬봄첨젠엠릿써탐끄곧겼깔쉽맘뷰묘즘럴묵몽톡빅핸웃냉셜죄쾌찌둘땅줘덩룩틱닉쓴뇌딱셋삭잉튜럭옷닐엉털쁘윈둥낭"
    "빼룡웠빨잇쯤밍렬쓸콩럽묻앙펀겸칸섯랄랩넓쌍잊겐욱켓킬멋닌잃픈듣랭닥싼됨롯멀웅밖멜뒷빵"
)


@dataclass(frozen=True)
class Script:
    """One writing system: ISO 15924 code, and the chunk <-> glyph tables."""

    code: str
    name: str
    cased: bool
    encode_table: dict[str, str] = field(repr=False)
    punct: dict[str, str] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def decode_table(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for chunk, glyphs in self.encode_table.items():
            # Multi-codepoint glyphs (Devanagari consonant + matra) decode piecewise,
            # so register each codepoint; they must agree with the single-letter entries.
            parts = list(glyphs) if len(glyphs) == len(chunk) else [glyphs]
            pieces = list(chunk) if len(parts) == len(chunk) else [chunk]
            for g, c in zip(parts, pieces):
                if table.setdefault(g, c) != c:
                    raise ValueError(f"script {self.code}: glyph {g!r} decodes to both {table[g]!r} and {c!r}")
        for src, dst in self.punct.items():
            table[dst] = src
        return table


def _letterwise(glyphs: str) -> dict[str, str]:
    assert len(glyphs) == 26 and len(set(glyphs)) == 26, glyphs
    return dict(zip(LETTERS, glyphs))


def _pairwise(glyphs: str) -> dict[str, str]:
    assert len(glyphs) == 702 and len(set(glyphs)) == 702
    table = {a + b: glyphs[i * 26 + j] for i, a in enumerate(LETTERS) for j, b in enumerate(LETTERS)}
    table.update({a: glyphs[676 + i] for i, a in enumerate(LETTERS)})
    return table


def _devanagari() -> dict[str, str]:
    consonants = dict(zip(CONSONANTS, "बचदफगहजकलमनपङरसतवठषयझ"))
    independent = dict(zip(VOWELS, "अएइओउ"))
    matra = dict(zip(VOWELS, "ाेिोु"))
    table = {**consonants, **independent}
    for c, g in consonants.items():
        for v, m in matra.items():
            table[c + v] = g + m
    return table


def _kana() -> dict[str, str]:
    rows = {"k": "カキクケコ", "s": "サシスセソ", "t": "タチツテト", "n": "ナニヌネノ", "h": "ハヒフヘホ",
            "m": "マミムメモ", "r": "ラリルレロ", "g": "ガギグゲゴ", "z": "ザジズゼゾ", "d": "ダヂヅデド",
            "b": "バビブベボ", "p": "パピプペポ"}
    table = {c + v: g for c, syl in rows.items() for v, g in zip("aiueo", syl)}
    table.update({"ya": "ヤ", "yu": "ユ", "yo": "ヨ", "wa": "ワ", "wo": "ヲ"})
    table.update(dict(zip("aiueo", "アイウエオ")))
    table.update(dict(zip(CONSONANTS, "ぶちどふぐほじくろむんぷけるすとびわきゆず")))
    return table


_CJK_PUNCT = {".": "。", "?": "？", ",": "，"}

SCRIPTS: dict[str, Script] = {s.code: s for s in (
    Script("Latn", "Latin", True, {c: c for c in LETTERS}),
    Script("Cyrl", "Cyrillic", True, _letterwise("абцдефгхижклмнопщрстувшэыз")),
    Script("Grek", "Greek", True, _letterwise("αβψδεφγηιξκλμνοπθρστυώωχύζ")),
    Script("Deva", "Devanagari", False, _devanagari(), {".": "।"}),
    Script("Arab", "Arabic", False, _letterwise("ابثدعفغهيجكلمنوحقرستضطظخصز"), {"?": "؟", ",": "،"}),
    Script("Thai", "Thai", False, _letterwise("กขคงจฉชซญดตถทธนบปผพฟภมยรลว")),
    Script("Kana", "Japanese kana", False, _kana(), _CJK_PUNCT),
    Script("Hani", "Han", False, _pairwise(HAN_GLYPHS), _CJK_PUNCT),
    Script("Hang", "Hangul", False, _pairwise(HANGUL_GLYPHS)),
)}


def get_script(code: str) -> Script:
    try:
        return SCRIPTS[code]
    except KeyError:
        raise ValueError(f"unknown lab script {code!r}; known: {', '.join(SCRIPTS)}") from None


def transliterate(word: str, script: str | Script) -> str:
    """`word` (Latin letters, digits, punctuation) written in `script`."""
    s = script if isinstance(script, Script) else get_script(script)
    if s.code == "Latn":
        return word
    if word in s.punct:
        return s.punct[word]
    out: list[str] = []
    text = word if s.cased else word.lower()
    i = 0
    while i < len(text):
        two = text[i:i + 2].lower()
        if len(two) == 2 and two in s.encode_table and (s.cased is False or text[i + 1].islower()):
            glyph = s.encode_table[two]
            out.append(glyph.upper() if text[i].isupper() else glyph)
            i += 2
            continue
        ch = text[i]
        low = ch.lower()
        if low in s.encode_table:
            glyph = s.encode_table[low]
            out.append(glyph.upper() if ch.isupper() else glyph)
        else:
            out.append(s.punct.get(ch, ch))
        i += 1
    return "".join(out)


def untransliterate(word: str, script: str | Script) -> str:
    """The inverse of `transliterate` (lower-case for caseless scripts)."""
    s = script if isinstance(script, Script) else get_script(script)
    if s.code == "Latn":
        return word
    table = s.decode_table
    out = []
    for ch in word:
        low = ch.lower()
        if low in table:
            latin = table[low]
            out.append(latin.upper() if ch != low and s.cased else latin)
        else:
            out.append(ch)
    return "".join(out)


def glyphs(script: str | Script) -> set[str]:
    """Every character the script can write (for vocabulary coverage checks)."""
    s = script if isinstance(script, Script) else get_script(script)
    chars = {ch for g in s.encode_table.values() for ch in g} | set(s.punct.values())
    if s.cased:
        chars |= {ch.upper() for ch in chars}
    return chars
