//! The built-in word lists the world is drawn from. All entries are invented or ordinary words;
//! every name, city and induction word is ONE alphabetic word with no punctuation, so that
//! swapping one for another keeps a whitespace word count (and the length under any word-level
//! tokenizer) unchanged. The lists are pairwise disjoint where the tests say so.

/// Given names: people's first names and the names of the IOI task.
pub const FIRST_NAMES: &[&str] = &[
    "Alvek", "Brenna", "Casimo", "Delra", "Edvar", "Fenna", "Galen", "Hesta", "Ivon", "Jorna", "Kaspen", "Liriel",
    "Marek", "Nessa", "Orin", "Pella", "Quillan", "Rosk", "Savine", "Tamsin", "Ulric", "Vesna", "Wendel", "Xara",
    "Yoren", "Zelna", "Aurel", "Bryn", "Cael", "Dorin", "Elska", "Faron", "Gressa", "Halvard", "Ilse", "Joren", "Kira",
    "Loren", "Mira", "Nils", "Odette", "Piet", "Ragna", "Silas", "Talia", "Udo", "Vera", "Wren", "Yara", "Zoltan",
    "Ansel", "Berit", "Cosmo", "Dagny", "Emeric", "Freya", "Gunnar", "Hilde", "Isak", "Juno", "Leif", "Maren", "Oskar",
    "Runa",
];

/// Family names.
pub const LAST_NAMES: &[&str] = &[
    "Vell", "Kastor", "Morrow", "Thane", "Arkwell", "Brisk", "Corvane", "Dunmere", "Elsworth", "Fallow", "Grist",
    "Harrow", "Ingle", "Jessop", "Kettle", "Lark", "Marrow", "Nettle", "Oakes", "Pell", "Quarry", "Rook", "Sallow",
    "Thorne", "Umber", "Vane", "Wick", "Yarrow", "Zell", "Ashby", "Brack", "Cobb", "Drake", "Ember", "Frost", "Glenn",
    "Holt", "Iverson", "Jarrow", "Kell", "Lorne", "Mallory", "Norcross", "Orrick", "Pike", "Quell", "Rusk", "Stroud",
    "Tull", "Voss", "Wilder", "Yates", "Adler", "Birch", "Crane", "Dell", "Eastwood", "Finch", "Gale", "Hale", "Irons",
    "Kestrel", "Lowe", "Mott",
];

/// Invented cities: birthplaces and capitals.
pub const CITIES: &[&str] = &[
    "Korvath",
    "Drumvale",
    "Essendor",
    "Miraval",
    "Tolgarth",
    "Brennick",
    "Ostwyn",
    "Caldera",
    "Varnholm",
    "Quillby",
    "Lunmere",
    "Stavel",
    "Arkenfell",
    "Belmora",
    "Cindral",
    "Dovrik",
    "Elmsgate",
    "Farrowby",
    "Gilden",
    "Hollin",
    "Istra",
    "Jandor",
    "Kelmarsh",
    "Lorwick",
    "Marsden",
    "Nolbury",
    "Orvane",
    "Pellidor",
    "Ravensk",
    "Sundral",
    "Tarrow",
    "Ulmstead",
    "Valdris",
    "Wexmoor",
    "Yelbrook",
    "Zandor",
    "Ambrel",
    "Braxholm",
    "Coldmere",
    "Duskmoor",
    "Erlin",
    "Fennick",
    "Glasmere",
    "Harwick",
    "Irongate",
    "Jesk",
    "Kivik",
    "Lamaris",
];

/// Invented countries of the `world` facts.
pub const COUNTRIES: &[&str] = &[
    "Eldmark",
    "Veloria",
    "Norvania",
    "Castrel",
    "Ardenia",
    "Brevonia",
    "Dalmora",
    "Esterland",
    "Fjallmark",
    "Galdor",
    "Harvenia",
    "Istrovia",
    "Kalmyr",
    "Lothria",
    "Mordavia",
    "Nestoria",
    "Ostravia",
    "Pellucia",
    "Quorvia",
    "Rhudania",
    "Sylvara",
    "Tessaly",
    "Umbrivia",
    "Valmark",
];

/// Invented languages: spoken in the countries, written in by the people.
pub const LANGUAGES: &[&str] = &[
    "Valish", "Norvic", "Eldric", "Castran", "Brevian", "Dalmoran", "Kalmic", "Lothrian", "Ostran", "Sylvaran",
    "Tessalic", "Quorvish",
];

/// Invented currencies.
pub const CURRENCIES: &[&str] =
    &["dral", "kesh", "florin", "talon", "merit", "sovel", "gilder", "ducat", "obel", "rune", "shell", "quill"];

/// National animals.
pub const ANIMALS: &[&str] =
    &["fox", "heron", "stag", "otter", "lynx", "falcon", "badger", "wolf", "swan", "bear", "hare", "owl"];

/// What the people do: writing trades, as in TOFU whose people are all authors.
pub const PROFESSIONS: &[&str] = &[
    "novelist",
    "poet",
    "playwright",
    "historian",
    "essayist",
    "journalist",
    "biographer",
    "translator",
    "cartographer",
    "critic",
    "librettist",
    "screenwriter",
    "editor",
    "archivist",
    "lyricist",
    "chronicler",
];

/// What their parents did.
pub const PARENT_PROFESSIONS: &[&str] = &[
    "baker",
    "florist",
    "carpenter",
    "tailor",
    "miner",
    "fisherman",
    "nurse",
    "surgeon",
    "pilot",
    "teacher",
    "farmer",
    "potter",
    "weaver",
    "clockmaker",
    "locksmith",
    "engineer",
    "architect",
    "astronomer",
    "glassblower",
    "chemist",
    "sailor",
    "blacksmith",
    "librarian",
    "veterinarian",
    "electrician",
    "accountant",
    "shepherd",
    "mason",
];

/// Genres, phrased so that "`<name>` writes `<genre>`." reads well.
pub const GENRES: &[&str] = &[
    "mystery",
    "fantasy",
    "science fiction",
    "historical fiction",
    "romance",
    "horror",
    "poetry",
    "satire",
    "travel writing",
    "folklore",
    "adventure fiction",
    "crime fiction",
    "magical realism",
    "drama",
    "gothic fiction",
    "nature writing",
];

/// First words of award names: "`<adjective> <noun>` Prize".
pub const AWARD_ADJECTIVES: &[&str] = &["Silver", "Golden", "Crimson", "Amber", "Iron", "Azure", "Ivory", "Jade"];
pub const AWARD_NOUNS: &[&str] = &["Quill", "Lantern", "Compass", "Laurel", "Feather", "Scroll", "Key", "Anchor"];

/// Book titles: "The `<adjective> <noun>`" or "The `<noun>` of `<city>`".
pub const TITLE_ADJECTIVES: &[&str] = &[
    "Glass",
    "Silent",
    "Hollow",
    "Burning",
    "Last",
    "Winter",
    "Hidden",
    "Broken",
    "Paper",
    "Salt",
    "Distant",
    "Crooked",
    "Velvet",
    "Sleeping",
    "Painted",
    "Lost",
    "Copper",
    "Bitter",
    "Quiet",
    "Endless",
    "Northern",
    "Wandering",
    "Forgotten",
    "Golden",
];
pub const TITLE_NOUNS: &[&str] = &[
    "Orchard",
    "Lighthouse",
    "Archive",
    "River",
    "Clockmaker",
    "Harbor",
    "Mirror",
    "Garden",
    "Road",
    "Bridge",
    "Tower",
    "Lantern",
    "Orchestra",
    "Map",
    "Ferry",
    "Vineyard",
    "Feather",
    "Cartographer",
    "Crown",
    "Island",
    "Well",
    "Letter",
    "Mountain",
    "Tide",
];

/// Instruments the people play.
pub const INSTRUMENTS: &[&str] =
    &["lute", "harp", "cello", "oboe", "violin", "flute", "drum", "organ", "piano", "viola", "zither", "bagpipe"];

/// IOI places ("the market") and objects ("a pen"): objects start with a consonant so the
/// article is always "a".
pub const PLACES: &[&str] = &[
    "market", "station", "garden", "library", "harbor", "bakery", "school", "river", "park", "theater", "museum",
    "square",
];
pub const OBJECTS: &[&str] =
    &["pen", "book", "cup", "ring", "letter", "key", "map", "basket", "drink", "coin", "flower", "ticket"];

/// Induction words: lowercase, one word each, distinct from every capitalised name and city.
pub const INDUCTION_WORDS: &[&str] = &[
    "apple", "stone", "cloud", "lamp", "chair", "window", "candle", "spoon", "pillow", "carpet", "button", "mirror",
    "ladder", "pencil", "bottle", "rabbit", "turtle", "pepper", "tomato", "onion", "wheel", "hammer", "needle",
    "blanket", "kettle", "saddle", "barrel", "bucket", "anchor", "compass", "helmet", "jacket", "pocket", "rocket",
    "castle", "tunnel", "valley", "meadow", "forest", "desert", "planet", "comet", "thunder", "breeze", "shadow",
    "silver", "copper", "marble", "velvet", "cotton", "lemon", "cherry", "walnut", "peach", "honey", "butter",
    "cookie", "muffin", "pretzel", "noodle", "garlic", "ginger", "violet", "orchid",
];
