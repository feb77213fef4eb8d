"""The text of the default catalog: 500 items over 20 topics, generated deterministically.

Every item has a human-readable title, a one-sentence description, a topic, a quality ``q`` and a
clickbait score ``c``. Four items in every topic (80 of 500, 16 %) are clickbait: their *wording* is
sensational ("You Won't Believe ...", "... Nobody Tells You"), so a text embedding can tell them
apart from the sober items, and their quality is low. The text is written here, not sampled from a
model, so it is license-clean and identical on every machine; ``q`` and ``c`` come from a fixed
PCG64 stream (uniform draws only, which NumPy keeps stable across releases).

The embeddings of these texts are shipped in ``recenv/assets/`` (see :mod:`recenv.catalog`), so
building the default environment never loads the language model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DefaultItem", "TOPICS", "default_catalog_items"]

ITEMS_PER_TOPIC = 25
CLICKBAIT_PER_TOPIC = 4
_ATTRIBUTE_SEED = 20_261_129


@dataclass(frozen=True)
class _Topic:
    name: str
    subjects: tuple[str, ...]  # 12 subjects, lower-case unless a proper noun
    media: tuple[str, ...]  # what the items are: "documentary", "podcast episode", ...
    angles: tuple[str, ...]  # the second half of a description sentence


TOPICS: tuple[_Topic, ...] = (
    _Topic(
        "astronomy",
        ("black holes", "exoplanets", "the James Webb Space Telescope", "neutron stars",
         "the Apollo Moon landings", "Mars rovers", "dark matter", "solar eclipses",
         "the Andromeda galaxy", "comets and asteroids", "the life of stars", "the rings of Saturn"),
        ("documentary", "lecture", "explainer"),
        ("told by working astronomers", "with images from major observatories",
         "for anyone who looks up at the night sky", "from first observations to open questions"),
    ),
    _Topic(
        "cooking",
        ("fresh pasta", "sourdough bread", "French sauces", "Thai curries", "knife skills",
         "slow-cooked stews", "baking with butter", "vegetarian weeknight dinners",
         "cast-iron pans", "Japanese ramen", "seasonal salads", "homemade dumplings"),
        ("recipe video", "cooking class", "kitchen guide"),
        ("with step-by-step techniques from a professional chef", "using ingredients from any grocery",
         "for home cooks who want to improve", "explaining why each step matters"),
    ),
    _Topic(
        "football",
        ("the World Cup final", "pressing tactics", "the Champions League", "goalkeeping",
         "youth academies", "the offside rule", "set pieces", "transfer markets",
         "famous derbies", "the role of the number ten", "women's football", "penalty shootouts"),
        ("match analysis", "sports documentary", "tactics breakdown"),
        ("with commentary from former players", "drawing on decades of match footage",
         "for fans who want to read the game", "looking at the numbers behind the results"),
    ),
    _Topic(
        "jazz",
        ("bebop", "Miles Davis", "the Blue Note label", "big band swing", "jazz piano voicings",
         "improvisation", "John Coltrane", "the New Orleans roots of jazz", "modal jazz",
         "jazz drumming", "vocal jazz standards", "the Harlem Renaissance"),
        ("music history podcast", "listening guide", "concert film"),
        ("with recordings from the classic era", "for listeners new to the genre",
         "explained by working musicians", "tracing how the sound evolved"),
    ),
    _Topic(
        "gardening",
        ("growing tomatoes", "composting", "pruning fruit trees", "raised vegetable beds",
         "native wildflowers", "houseplant care", "garden soil health", "growing herbs",
         "attracting pollinators", "planting bulbs", "organic pest control", "small balcony gardens"),
        ("gardening guide", "seasonal tutorial", "allotment diary"),
        ("through the seasons of a real garden", "for beginners with little space",
         "with advice from an experienced grower", "covering planting, care and harvest"),
    ),
    _Topic(
        "personal finance",
        ("index funds", "building an emergency fund", "paying off debt", "retirement savings",
         "household budgeting", "compound interest", "buying a first home", "tax-advantaged accounts",
         "insurance basics", "saving for university", "credit scores", "financial independence"),
        ("money guide", "finance podcast", "planning workshop"),
        ("with worked examples and plain numbers", "for people starting to manage money",
         "without jargon or sales pitches", "explaining the trade-offs of each choice"),
    ),
    _Topic(
        "travel",
        ("walking in the Scottish Highlands", "train travel across Europe", "Kyoto temples",
         "the Patagonian fjords", "street food in Mexico City", "Iceland's ring road",
         "backpacking in Vietnam", "the Amalfi coast", "Moroccan markets", "national parks of Canada",
         "the Silk Road cities", "island hopping in Greece"),
        ("travel documentary", "travel guide", "journey diary"),
        ("with practical tips on routes and seasons", "filmed on the road over several weeks",
         "for travellers on a modest budget", "meeting the people who live there"),
    ),
    _Topic(
        "fitness",
        ("strength training", "marathon preparation", "mobility routines", "high-intensity intervals",
         "yoga for beginners", "proper squat form", "recovery and sleep", "cycling endurance",
         "bodyweight workouts", "swimming technique", "core stability", "training plans over forty"),
        ("workout programme", "coaching video", "training guide"),
        ("designed by a certified coach", "with progressions for every level",
         "based on current sports science", "that fits into a busy week"),
    ),
    _Topic(
        "programming",
        ("Python generators", "Rust ownership", "writing unit tests", "Git branching",
         "SQL query planning", "functional programming", "concurrency and threads",
         "designing REST APIs", "debugging techniques", "type systems", "profiling slow code",
         "refactoring legacy code"),
        ("programming tutorial", "conference talk", "coding walkthrough"),
        ("with runnable examples", "for developers with a year of experience",
         "built around a realistic project", "comparing several languages"),
    ),
    _Topic(
        "ancient history",
        ("the Roman Republic", "the pyramids of Giza", "Alexander the Great", "the fall of Rome",
         "Mesopotamian city-states", "the Athenian democracy", "the Han dynasty", "the Maya cities",
         "the Persian Empire", "the Library of Alexandria", "Carthage and the Punic Wars",
         "the Bronze Age collapse"),
        ("history documentary", "history lecture", "narrated history"),
        ("drawing on archaeology and ancient texts", "told by historians of the period",
         "separating evidence from legend", "with maps and reconstructions"),
    ),
    _Topic(
        "wildlife",
        ("wolves of Yellowstone", "coral reefs", "the migration of wildebeest", "octopus intelligence",
         "birds of prey", "elephant families", "the Arctic fox", "monarch butterflies",
         "humpback whale songs", "rainforest frogs", "urban foxes", "penguin colonies"),
        ("nature documentary", "wildlife film", "field report"),
        ("filmed over a full year in the wild", "with scientists who study them",
         "showing behaviour rarely caught on camera", "and the threats they face today"),
    ),
    _Topic(
        "classic cinema",
        ("Alfred Hitchcock", "film noir", "the silent film era", "Akira Kurosawa",
         "the French New Wave", "classic Hollywood musicals", "Italian neorealism",
         "the golden age of westerns", "Orson Welles", "early sound films", "screwball comedies",
         "the art of the film score"),
        ("film essay", "retrospective", "film studies lecture"),
        ("with restored clips and archival interviews", "for viewers discovering older films",
         "looking at craft, lighting and editing", "placing the work in its time"),
    ),
    _Topic(
        "video games",
        ("open-world design", "speedrunning", "indie game development", "retro consoles",
         "game soundtracks", "competitive esports", "level design", "role-playing game systems",
         "the history of Nintendo", "game preservation", "puzzle games", "multiplayer netcode"),
        ("game analysis", "developer interview", "gaming documentary"),
        ("with footage from the games themselves", "told by the people who made them",
         "for players curious about how games work", "looking at design decisions"),
    ),
    _Topic(
        "fashion",
        ("sustainable clothing", "tailoring a suit", "the history of denim", "capsule wardrobes",
         "Paris fashion week", "vintage shopping", "textile dyeing", "streetwear culture",
         "caring for leather shoes", "knitwear", "colour matching outfits", "Japanese workwear"),
        ("style guide", "fashion documentary", "designer interview"),
        ("with advice from professional stylists", "covering materials and construction",
         "for people building a wardrobe that lasts", "tracing trends back to their origins"),
    ),
    _Topic(
        "chess",
        ("the Sicilian Defence", "endgame technique", "the Queen's Gambit", "famous world championships",
         "tactics puzzles", "opening principles", "Magnus Carlsen", "pawn structures",
         "rapid and blitz chess", "chess engines", "the immortal game", "calculation training"),
        ("chess lesson", "game commentary", "chess course"),
        ("annotated move by move", "for club players who want to improve",
         "taught by a grandmaster", "with positions to study on your own board"),
    ),
    _Topic(
        "climate science",
        ("ocean warming", "carbon capture", "glacier retreat", "heat pumps", "wind power",
         "climate models", "urban heat islands", "sea level rise", "reforestation",
         "battery storage", "the carbon cycle", "extreme weather attribution"),
        ("science explainer", "research briefing", "climate documentary"),
        ("with data from peer-reviewed studies", "explained by climate researchers",
         "for readers who want the evidence", "looking at costs and solutions"),
    ),
    _Topic(
        "cars",
        ("electric vehicles", "classic sports cars", "engine maintenance", "Formula One aerodynamics",
         "rally driving", "car restoration", "hybrid drivetrains", "tyre technology",
         "the history of the Mini", "winter driving", "buying a used car", "autonomous driving"),
        ("car review", "motoring documentary", "workshop video"),
        ("tested on road and track", "with a mechanic explaining each part",
         "for drivers who want to understand their car", "comparing models side by side"),
    ),
    _Topic(
        "parenting",
        ("toddler sleep routines", "reading with young children", "screen time", "starting school",
         "raising teenagers", "sibling rivalry", "healthy family meals", "outdoor play",
         "talking about feelings", "homework habits", "bilingual children", "the first year with a baby"),
        ("parenting guide", "family podcast", "expert interview"),
        ("with advice from paediatricians and teachers", "drawing on real family stories",
         "for parents short on time", "based on child development research"),
    ),
    _Topic(
        "photography",
        ("landscape photography", "portrait lighting", "film cameras", "street photography",
         "long exposures", "composition rules", "photo editing workflows", "wildlife photography",
         "astrophotography", "choosing a lens", "black-and-white photography", "golden hour light"),
        ("photography tutorial", "photo walk", "photographer profile"),
        ("with before-and-after examples", "for photographers with any camera",
         "shot on location", "explaining the settings behind each image"),
    ),
    _Topic(
        "psychology",
        ("habit formation", "memory and forgetting", "cognitive biases", "mindfulness practice",
         "sleep and mood", "motivation", "the psychology of decision making", "stress and resilience",
         "childhood attachment", "loneliness", "the placebo effect", "learning a new skill"),
        ("psychology lecture", "science podcast", "research summary"),
        ("grounded in experimental studies", "explained by a clinical psychologist",
         "with exercises to try at home", "separating findings from popular myths"),
    ),
)

_SOBER_TITLES: tuple[str, ...] = (
    "{Subject}: A Beginner's Guide",
    "Understanding {subject}",
    "A Short History of {subject}",
    "Inside {subject}",
    "{Subject}, Explained",
    "A Closer Look at {subject}",
    "Getting Started with {subject}",
)
_SOBER_DESCRIPTIONS: tuple[str, ...] = (
    "A {medium} on {subject}, {angle}.",
    "This {medium} introduces {subject}, {angle}.",
    "An in-depth {medium} about {subject}, {angle}.",
)
_CLICKBAIT_TITLES: tuple[str, ...] = (
    "You Won't Believe What Happened With {subject}!",
    "10 Shocking Secrets About {subject} Nobody Tells You",
    "This One Weird Trick About {subject} Changes EVERYTHING",
    "What They Don't Want You to Know About {subject}",
)
_CLICKBAIT_DESCRIPTIONS: tuple[str, ...] = (
    "Number 7 will leave you speechless: the jaw-dropping truth about {subject} everyone is talking about!",
    "Experts are FURIOUS about this {medium} on {subject}, and you have to see it before it's gone!",
    "Click now to find out the insane thing about {subject} that will blow your mind!",
    "Nobody was ready for this {medium} about {subject}. The ending is UNBELIEVABLE!",
)


@dataclass(frozen=True)
class DefaultItem:
    """One item of the default catalog."""

    title: str
    description: str
    topic: str
    quality: float
    clickbait: float

    @property
    def text(self) -> str:
        """The text that is embedded: title and description."""
        return f"{self.title}. {self.description}"


def _capitalised(subject: str) -> str:
    return subject[:1].upper() + subject[1:]


def default_catalog_items() -> list[DefaultItem]:
    """The 500 items of the default catalog, in a fixed order (topic by topic)."""
    rng = np.random.Generator(np.random.PCG64(_ATTRIBUTE_SEED))
    items: list[DefaultItem] = []
    sober_per_topic = ITEMS_PER_TOPIC - CLICKBAIT_PER_TOPIC
    for topic_index, topic in enumerate(TOPICS):
        n_subjects = len(topic.subjects)
        for j in range(sober_per_topic):
            # Walk subjects and title templates on co-prime strides so no (subject, title) pair repeats.
            subject = topic.subjects[(j + topic_index) % n_subjects]
            title = _SOBER_TITLES[(j + 2 * topic_index) % len(_SOBER_TITLES)]
            description = _SOBER_DESCRIPTIONS[(j + topic_index) % len(_SOBER_DESCRIPTIONS)]
            medium = topic.media[j % len(topic.media)]
            angle = topic.angles[(j // 2 + topic_index) % len(topic.angles)]
            u_quality, u_clickbait = rng.random(2)
            items.append(
                DefaultItem(
                    title=title.format(Subject=_capitalised(subject), subject=subject),
                    description=description.format(medium=medium, subject=subject, angle=angle),
                    topic=topic.name,
                    quality=round(0.45 + 0.5 * float(u_quality), 4),
                    clickbait=round(0.15 * float(u_clickbait), 4),
                )
            )
        for j in range(CLICKBAIT_PER_TOPIC):
            subject = topic.subjects[(3 * j + topic_index + 1) % n_subjects]
            title = _CLICKBAIT_TITLES[(j + topic_index) % len(_CLICKBAIT_TITLES)]
            description = _CLICKBAIT_DESCRIPTIONS[(j + 2 * topic_index) % len(_CLICKBAIT_DESCRIPTIONS)]
            medium = topic.media[j % len(topic.media)]
            u_quality, u_clickbait = rng.random(2)
            items.append(
                DefaultItem(
                    title=title.format(subject=subject),
                    description=description.format(medium=medium, subject=subject),
                    topic=topic.name,
                    quality=round(0.05 + 0.35 * float(u_quality), 4),
                    clickbait=round(0.6 + 0.4 * float(u_clickbait), 4),
                )
            )
    return items
