//! `duban sim year`: a year-long message-board export built from the real shared texts (varied,
//! never copied into the repository) with planted truth to score the analytic core against.
//!
//! What is planted (fractions of `rows`, at 140,000 rows):
//! - **place issues** (~16%): an estate and a matter (noise, property fees, a construction
//!   site…), filed by 2–60 people over days to months; one to three matters per place, close in
//!   time. Each filing is one real text edited, its place written as people write it (suffix
//!   folded or dropped, brand, road or district before it, a word glued on, or not named at all).
//! - **city-wide issues** (~3%): a policy, fee or service question naming no place, filed by
//!   5–60 people from every district over weeks to months.
//! - **template campaigns** (~1.2%): 4–10 groups of 3–6 residents in one district, each group
//!   about its own estate, all sending one text with their estate named (the groups must not merge).
//! - **heavy posters** (one per ~307 rows, 10–100 filings a year): three in four about one matter
//!   at their own place (each filing another real text), the others on anything with a habit
//!   sentence of their own.
//! - **resubmissions** (~6%): a person files an earlier complaint again, edited, 1 to 330 days later.
//! - **background**: everyone else (median one filing, a tail to eight), each filing a real text
//!   edited strongly at a place (matter) no other filing has, or placeless and spliced with another.

pub mod pool;
pub mod vary;

use crate::sim::corpus::{DISTRICT_WEIGHTS, random_time};
use crate::sim::rng::SimRng;
use crate::sim::text::DISTRICTS;
use anyhow::Context;
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use pool::BaseText;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use vary::{EditStrength, GenPlace, PlaceMaker};

pub const DEFAULT_ROWS: usize = 140_000;
pub const DEFAULT_DAYS: u32 = 365;
pub const DEFAULT_SEED: u64 = 19;
pub const EXPORT_FILE: &str = "export.csv";
pub const TRUTH_FILE: &str = "truth.csv";
pub const SUMMARY_FILE: &str = "truth.json";
/// The export's header: the message-board format `connectors/board-export.toml` maps.
pub const EXPORT_HEADER: [&str; 7] = [
    "留言编号",
    "留言用户",
    "留言主题",
    "留言时间",
    "留言详情",
    "反对数",
    "点赞数",
];
pub const TRUTH_HEADER: [&str; 8] = [
    "row_id",
    "user",
    "issue",
    "kind",
    "place",
    "template",
    "resubmission_of",
    "rate_class",
];

/// `duban sim year` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct YearArgs {
    /// Rows of the export.
    #[arg(long, default_value_t = DEFAULT_ROWS)]
    pub rows: usize,
    /// Days the export spans.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    pub days: u32,
    /// The same seed (and sizes and texts) always yields the same export.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Last day, YYYY-MM-DD.
    #[arg(long, default_value = "2024-12-31")]
    pub end_date: NaiveDate,
    /// Folder of the teddy CSV files (default `$DUBAN_SHARED_DIR/data/teddy2020c`, else
    /// `../shared/data/teddy2020c`).
    #[arg(long = "teddy", value_name = "DIR")]
    pub teddy: Option<PathBuf>,
    /// Output folder: export.csv, truth.csv, truth.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// The teddy folder of the shared data (`$DUBAN_SHARED_DIR/data/teddy2020c`).
pub fn default_teddy_dir() -> PathBuf {
    crate::classify::data::shared_dir().join("data/teddy2020c")
}

/// What a planted issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// One matter at one place, many people.
    Place,
    /// One matter without a place, people from every district.
    City,
    /// One group of a template campaign: the same text, the group's own place.
    Template,
    /// One heavy poster's repeated matter at their place.
    Poster,
}

impl IssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::Place => "place",
            IssueKind::City => "city",
            IssueKind::Template => "template",
            IssueKind::Poster => "poster",
        }
    }
}

/// How often a poster was planted to file (the truth's rate class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateClass {
    /// One filing.
    Single,
    /// 2–4.
    Low,
    /// 5–9.
    Moderate,
    /// 10 or more.
    Heavy,
}

impl RateClass {
    pub fn of(filings: usize) -> RateClass {
        match filings {
            0 | 1 => RateClass::Single,
            2..=4 => RateClass::Low,
            5..=9 => RateClass::Moderate,
            _ => RateClass::Heavy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Single => "single",
            RateClass::Low => "low",
            RateClass::Moderate => "moderate",
            RateClass::Heavy => "heavy",
        }
    }
}

/// One planted issue.
#[derive(Debug, Clone, Serialize)]
pub struct PlantedIssue {
    pub id: String,
    pub kind: IssueKind,
    pub matter: &'static str,
    /// The issue's district (none for city-wide issues).
    pub district: Option<&'static str>,
    /// Id of its place (`L…`), shared by the issues of one place.
    pub place: Option<String>,
    /// The place's full name as planted (before people vary it).
    pub place_name: Option<String>,
    /// Id of its template campaign (`T…`).
    pub template: Option<String>,
    pub rows: usize,
    pub complainants: usize,
}

/// One export row with its truth.
#[derive(Debug, Clone)]
pub struct YearRow {
    pub row_id: u64,
    pub person: usize,
    pub at: NaiveDateTime,
    pub title: String,
    pub body: String,
    pub likes: u32,
    pub dislikes: u32,
    pub issue: Option<usize>,
    /// Row id of the earlier filing this one files again.
    pub resubmission_of: Option<u64>,
}

/// A generated export and its truth.
#[derive(Debug, Clone)]
pub struct YearCorpus {
    pub rows: Vec<YearRow>,
    pub issues: Vec<PlantedIssue>,
    /// Planted rate class per person (index = `YearRow::person`).
    pub classes: Vec<RateClass>,
    /// Real messages the texts were built from.
    pub pool_size: usize,
}

impl YearCorpus {
    pub fn user(&self, person: usize) -> String {
        format!("U{:07}", 1_000_000 + person)
    }

    pub fn mean_body_chars(&self) -> f64 {
        let n: usize = self.rows.iter().map(|r| r.body.chars().count()).sum();
        n as f64 / self.rows.len().max(1) as f64
    }
}

/// How a draft's text is made.
enum Text {
    /// A real text varied.
    Base(Varied),
    /// An edited copy of an earlier draft (a resubmission).
    Copy { of: usize },
}

/// A real text and how it is varied.
#[derive(Clone)]
struct Varied {
    base: usize,
    /// The planted place the text's own place becomes.
    place: Option<PlaceUse>,
    /// Other real names in the text → fresh ones (`maps` index).
    map: usize,
    district: &'static str,
    strength: EditStrength,
    /// A sentence before the text (who is writing, where they live).
    intro: Option<String>,
    /// Sentences of another real text in place of the latter half.
    splice: Option<usize>,
    again: bool,
}

#[derive(Clone, Copy)]
struct PlaceUse {
    place: usize,
    /// Chance the place is written other than by its name.
    oddity: f64,
    /// Chance it is not named at all.
    unnamed: f64,
}

struct Draft {
    person: Option<usize>,
    issue: Option<usize>,
    at: NaiveDateTime,
    text: Text,
    likes_max: u32,
}

struct Generator<'a> {
    rng: SimRng,
    pool: &'a [BaseText],
    start: NaiveDateTime,
    days: i64,
    maker: PlaceMaker,
    places: Vec<GenPlace>,
    maps: Vec<Vec<(String, String)>>,
    drafts: Vec<Draft>,
    issues: Vec<PlantedIssue>,
    /// Pool indices whose own place is an estate, by matter.
    by_matter: Vec<Vec<usize>>,
    /// Pool indices with a place.
    placed: Vec<usize>,
    /// Pool indices whose own place is an estate.
    estates: Vec<usize>,
    policy: Vec<usize>,
}

/// Generates the corpus from the teddy texts in `teddy_dir`.
pub fn generate(
    rows: usize,
    days: u32,
    seed: u64,
    end_date: NaiveDate,
    teddy_dir: &Path,
) -> anyhow::Result<YearCorpus> {
    let pool = pool::load(teddy_dir)?;
    generate_from(rows, days, seed, end_date, &pool)
}

/// Generates the corpus from an already loaded pool.
pub fn generate_from(
    rows: usize,
    days: u32,
    seed: u64,
    end_date: NaiveDate,
    pool: &[BaseText],
) -> anyhow::Result<YearCorpus> {
    anyhow::ensure!(rows >= 500, "sim year needs at least 500 rows, got {rows}");
    anyhow::ensure!(days >= 30, "sim year needs at least 30 days, got {days}");
    let placed: Vec<usize> = (0..pool.len())
        .filter(|&i| !pool[i].places.is_empty())
        .collect();
    let policy: Vec<usize> = (0..pool.len()).filter(|&i| pool[i].policy).collect();
    // Planted places replace a text's own estate (a road or a firm is kept for the background).
    let estates: Vec<usize> = placed
        .iter()
        .copied()
        .filter(|&i| pool::is_estate(&pool[i].places[0]))
        .collect();
    anyhow::ensure!(
        estates.len() >= 20 && policy.len() >= 10,
        "the teddy texts hold too few messages naming an estate ({}) or asking about a policy ({})",
        estates.len(),
        policy.len()
    );
    let mut by_matter = vec![Vec::new(); pool::MATTERS.len()];
    for &i in &estates {
        if let Some(m) = pool[i].matter {
            by_matter[m].push(i);
        }
    }
    let start = (end_date - Duration::days(i64::from(days) - 1)).and_time(NaiveTime::MIN);
    let mut g = Generator {
        rng: SimRng::new(seed).fork("year"),
        pool,
        start,
        days: i64::from(days),
        maker: PlaceMaker::new(),
        places: Vec::new(),
        maps: vec![Vec::new()],
        drafts: Vec::new(),
        issues: Vec::new(),
        by_matter,
        placed,
        estates,
        policy,
    };
    let mut classes = Vec::new();
    g.heavy_posters(rows, &mut classes);
    g.place_issues(rows * 16 / 100);
    g.city_issues(rows * 3 / 100);
    g.template_campaigns(rows * 12 / 1000);
    let resubs = rows * 6 / 100;
    let background = rows.saturating_sub(g.drafts.len() + resubs);
    g.background(background);
    g.assign_people(&mut classes);
    g.resubmissions(rows.saturating_sub(g.drafts.len()));
    Ok(g.render(classes, pool.len()))
}

fn district(rng: &mut SimRng) -> &'static str {
    DISTRICTS[rng.weighted(&DISTRICT_WEIGHTS)]
}

impl Generator<'_> {
    fn end(&self) -> NaiveDateTime {
        self.start + Duration::days(self.days) - Duration::seconds(1)
    }

    /// A time on day `day` of the span (clamped into it).
    fn on_day(&mut self, day: i64) -> NaiveDateTime {
        let day = day.clamp(0, self.days - 1);
        random_time(&mut self.rng, self.start + Duration::days(day), 1)
    }

    fn new_place(&mut self, district: &'static str) -> usize {
        let p = self.maker.estate(&mut self.rng, district);
        self.places.push(p);
        self.places.len() - 1
    }

    /// A map of the base's other place names (all but its own place when `skip_first`, and the
    /// title's) to fresh names.
    fn fresh_map(&mut self, base: usize, skip_first: bool) -> usize {
        let b = &self.pool[base];
        let from = usize::from(skip_first).min(b.places.len());
        let names: Vec<String> = b.places[from..]
            .iter()
            .chain(&b.title_places)
            .cloned()
            .collect();
        let map = names
            .into_iter()
            .map(|real| {
                let fresh = self.maker.like(&mut self.rng, &real);
                (real, fresh)
            })
            .collect();
        self.maps.push(map);
        self.maps.len() - 1
    }

    fn issue(
        &mut self,
        kind: IssueKind,
        matter: &'static str,
        district: Option<&'static str>,
        place: Option<usize>,
        template: Option<usize>,
    ) -> usize {
        self.issues.push(PlantedIssue {
            id: format!("I{:05}", self.issues.len() + 1),
            kind,
            matter,
            district,
            place: place.map(|p| format!("L{:05}", p + 1)),
            place_name: place.map(|p| self.places[p].name()),
            template: template.map(|t| format!("T{:03}", t + 1)),
            rows: 0,
            complainants: 0,
        });
        self.issues.len() - 1
    }

    /// Draws a number from `(weight, lo, hi)` ranges.
    fn size(&mut self, ranges: &[(u32, i64, i64)]) -> usize {
        let w: Vec<u32> = ranges.iter().map(|r| r.0).collect();
        let (_, lo, hi) = ranges[self.rng.weighted(&w)];
        self.rng.range(lo, hi) as usize
    }

    fn matter_with_texts(&mut self, min: usize) -> usize {
        let ok: Vec<usize> = (0..self.by_matter.len())
            .filter(|&m| self.by_matter[m].len() >= min)
            .collect();
        if ok.is_empty() {
            // Every matter is rare: any matter with a text.
            return (0..self.by_matter.len())
                .find(|&m| !self.by_matter[m].is_empty())
                .unwrap_or(0);
        }
        // Weighted by how many texts a matter has, as complaints are.
        let w: Vec<u32> = ok.iter().map(|&m| self.by_matter[m].len() as u32).collect();
        ok[self.rng.weighted(&w)]
    }

    fn heavy_posters(&mut self, rows: usize, classes: &mut Vec<RateClass>) {
        let n = (rows as f64 / 307.0).round().max(1.0) as usize;
        for _ in 0..n {
            let person = classes.len();
            let count = self.size(&[(70, 10, 15), (20, 16, 30), (8, 31, 60), (2, 61, 100)]);
            classes.push(RateClass::of(count));
            let mut days: Vec<i64> = (0..count)
                .map(|_| self.rng.range(0, self.days - 1))
                .collect();
            days.sort_unstable();
            if self.rng.chance(0.75) {
                // Focused: one matter at their own place, each filing another text about it.
                let matter = self.matter_with_texts(5);
                let d = district(&mut self.rng);
                let place = self.new_place(d);
                let issue = self.issue(
                    IssueKind::Poster,
                    pool::MATTERS[matter].0,
                    Some(d),
                    Some(place),
                    None,
                );
                let mut texts = self.by_matter[matter].clone();
                self.rng.shuffle(&mut texts);
                for (k, day) in days.into_iter().enumerate() {
                    let base = texts[k % texts.len()];
                    let map = self.fresh_map(base, true);
                    let at = self.on_day(day);
                    let again = k > 0 && self.rng.chance(0.3);
                    self.drafts.push(Draft {
                        person: Some(person),
                        issue: Some(issue),
                        at,
                        text: Text::Base(Varied {
                            base,
                            place: Some(PlaceUse {
                                place,
                                oddity: 0.3,
                                unnamed: 0.1,
                            }),
                            map,
                            district: d,
                            strength: EditStrength::MEDIUM,
                            intro: None,
                            splice: None,
                            again,
                        }),
                        likes_max: 3,
                    });
                }
            } else {
                // A habit of their own: anything, with a sentence they always write.
                let habit = self.rng.pick(HABITS).to_string();
                for day in days {
                    let base = self.placed[self.rng.below(self.placed.len())];
                    let d = district(&mut self.rng);
                    let place = self.new_place(d);
                    let map = self.fresh_map(base, true);
                    let at = self.on_day(day);
                    self.drafts.push(Draft {
                        person: Some(person),
                        issue: None,
                        at,
                        text: Text::Base(Varied {
                            base,
                            place: Some(PlaceUse {
                                place,
                                oddity: 0.2,
                                unnamed: 0.0,
                            }),
                            map,
                            district: d,
                            strength: EditStrength::MEDIUM,
                            intro: Some(habit.clone()),
                            splice: None,
                            again: false,
                        }),
                        likes_max: 3,
                    });
                }
            }
        }
    }

    fn place_issues(&mut self, budget: usize) {
        let mut used = 0;
        while used < budget {
            let d = district(&mut self.rng);
            let place = self.new_place(d);
            let anchor = self.rng.range(0, self.days - 1);
            let n_matters = [1, 2, 3][self.rng.weighted(&[55, 30, 15])];
            let mut matters: Vec<usize> = Vec::new();
            for _ in 0..n_matters {
                let m = self.matter_with_texts(3);
                if !matters.contains(&m) {
                    matters.push(m);
                }
            }
            for m in matters {
                let base = self.by_matter[m][self.rng.below(self.by_matter[m].len())];
                let size = self
                    .size(&[
                        (40, 2, 3),
                        (30, 4, 7),
                        (18, 8, 15),
                        (9, 16, 30),
                        (3, 31, 60),
                    ])
                    .min(budget.saturating_sub(used).max(2));
                let span = if self.rng.chance(0.7) {
                    self.rng.range(3, 30)
                } else {
                    self.rng.range(31, 240)
                };
                let first = anchor + self.rng.range(-45, 45);
                let first = first.clamp(0, (self.days - span).max(0));
                let issue = self.issue(
                    IssueKind::Place,
                    pool::MATTERS[m].0,
                    Some(d),
                    Some(place),
                    None,
                );
                let map = self.fresh_map(base, true);
                for _ in 0..size {
                    let u: f64 = self.rng.below(1_000_000) as f64 / 1e6;
                    let at = self.on_day(first + (span as f64 * u.powf(1.5)) as i64);
                    self.drafts.push(Draft {
                        person: None,
                        issue: Some(issue),
                        at,
                        text: Text::Base(Varied {
                            base,
                            place: Some(PlaceUse {
                                place,
                                oddity: 0.5,
                                unnamed: 0.12,
                            }),
                            map,
                            district: d,
                            strength: EditStrength::MEDIUM,
                            intro: None,
                            splice: None,
                            again: false,
                        }),
                        likes_max: 30,
                    });
                }
                used += size;
            }
        }
    }

    fn city_issues(&mut self, budget: usize) {
        let mut bases = self.policy.clone();
        self.rng.shuffle(&mut bases);
        let mut used = 0;
        let mut k = 0;
        while used < budget {
            let base = bases[k % bases.len()];
            k += 1;
            let matter = self.pool[base]
                .matter
                .map_or("补贴政策", |m| pool::MATTERS[m].0);
            let issue = self.issue(IssueKind::City, matter, None, None, None);
            let city_map = self.fresh_map(base, false);
            let size = self
                .size(&[(40, 5, 10), (40, 11, 25), (20, 26, 60)])
                .min(budget.saturating_sub(used).max(5));
            let span = self.rng.range(14, 200);
            let first = self.rng.range(0, (self.days - span).max(0));
            for _ in 0..size {
                let d = district(&mut self.rng);
                let intro = match self.rng.weighted(&[55, 35, 10]) {
                    0 => None,
                    1 => Some(format!(
                        "{}{d}{}",
                        self.rng.pick(&["我是", "本人是", "我们是"]),
                        self.rng.pick(&["的居民，", "的市民，", "的一名职工，"])
                    )),
                    _ => {
                        let home = self.new_place(d);
                        Some(format!("我住在{}{}，", d, self.places[home].name()))
                    }
                };
                let u: f64 = self.rng.below(1_000_000) as f64 / 1e6;
                let at = self.on_day(first + (span as f64 * u) as i64);
                self.drafts.push(Draft {
                    person: None,
                    issue: Some(issue),
                    at,
                    text: Text::Base(Varied {
                        base,
                        place: None,
                        map: city_map,
                        district: d,
                        strength: EditStrength::MEDIUM,
                        intro,
                        splice: None,
                        again: false,
                    }),
                    likes_max: 30,
                });
            }
            used += size;
        }
    }

    fn template_campaigns(&mut self, budget: usize) {
        let mut used = 0;
        let mut set = 0;
        while used < budget {
            let base = self.estates[self.rng.below(self.estates.len())];
            let matter = self.pool[base]
                .matter
                .map_or("其他", |m| pool::MATTERS[m].0);
            let d = district(&mut self.rng);
            let map = self.fresh_map(base, true);
            let span = self.rng.range(3, 20);
            let first = self.rng.range(0, self.days - span);
            for _ in 0..self.rng.range(4, 10) {
                let place = self.new_place(d);
                let issue =
                    self.issue(IssueKind::Template, matter, Some(d), Some(place), Some(set));
                let residents = self.rng.range(3, 6) as usize;
                for _ in 0..residents {
                    let day = first + self.rng.range(0, span);
                    let at = self.on_day(day);
                    self.drafts.push(Draft {
                        person: None,
                        issue: Some(issue),
                        at,
                        text: Text::Base(Varied {
                            base,
                            place: Some(PlaceUse {
                                place,
                                oddity: 0.15,
                                unnamed: 0.0,
                            }),
                            map,
                            district: d,
                            strength: EditStrength::LIGHT,
                            intro: None,
                            splice: None,
                            again: false,
                        }),
                        likes_max: 10,
                    });
                }
                used += residents;
            }
            set += 1;
        }
    }

    fn background(&mut self, n: usize) {
        // Every text used about equally often; a place never holds two filings of one matter.
        let mut order: Vec<usize> = (0..self.pool.len()).collect();
        self.rng.shuffle(&mut order);
        let inventory = (n / 3).max(50);
        let first_place = self.places.len();
        for _ in 0..inventory {
            let d = district(&mut self.rng);
            self.new_place(d);
        }
        let mut taken: HashSet<(usize, usize)> = HashSet::new();
        for k in 0..n {
            let base = order[k % order.len()];
            let matter = self.pool[base].matter.unwrap_or(pool::MATTERS.len());
            let mut place = first_place + self.rng.below(inventory);
            let mut tries = 0;
            while !taken.insert((place, matter)) {
                tries += 1;
                place = if tries < 5 {
                    first_place + self.rng.below(inventory)
                } else {
                    let d = district(&mut self.rng);
                    self.new_place(d)
                };
            }
            let d = self.places[place].district;
            let has_place = !self.pool[base].places.is_empty();
            let (place_use, intro, splice) = if has_place || self.rng.chance(0.5) {
                let intro = (!has_place).then(|| {
                    let name = self.places[place].variant(&mut self.rng, 0.3);
                    format!("我住在{name}，")
                });
                let p = PlaceUse {
                    place,
                    oddity: 0.3,
                    unnamed: 0.0,
                };
                (Some(p), intro, None)
            } else {
                (None, None, Some(order[self.rng.below(order.len())]))
            };
            let map = self.fresh_map(base, has_place);
            let day = self.rng.range(0, self.days - 1);
            let at = self.on_day(day);
            self.drafts.push(Draft {
                person: None,
                issue: None,
                at,
                text: Text::Base(Varied {
                    base,
                    place: place_use,
                    map,
                    district: d,
                    strength: EditStrength::STRONG,
                    intro,
                    splice,
                    again: false,
                }),
                likes_max: 3,
            });
        }
    }

    /// The population: filings per person 1 (62%), 2 (22%), 3 (8%), 4 (4%), 5–8 (4%); each person's
    /// filings are drafts drawn at random, never two in one planted issue.
    fn assign_people(&mut self, classes: &mut Vec<RateClass>) {
        let open: Vec<usize> = (0..self.drafts.len())
            .filter(|&i| self.drafts[i].person.is_none())
            .collect();
        let mut slots: Vec<usize> = Vec::with_capacity(open.len());
        while slots.len() < open.len() {
            let person = classes.len();
            let n = self.size(&[(62, 1, 1), (22, 2, 2), (8, 3, 3), (4, 4, 4), (4, 5, 8)]);
            let n = n.min(open.len() - slots.len());
            classes.push(RateClass::of(n));
            slots.extend(std::iter::repeat_n(person, n));
        }
        self.rng.shuffle(&mut slots);
        let mut in_issue: HashSet<(usize, usize)> = HashSet::new();
        for (k, &d) in open.iter().enumerate() {
            let issue = self.drafts[d].issue;
            if let Some(issue) = issue {
                // Swap in a later slot whose person is not in this issue yet.
                let mut j = k;
                while j + 1 < slots.len() && in_issue.contains(&(slots[j], issue)) {
                    j += 1;
                }
                slots.swap(k, j);
                in_issue.insert((slots[k], issue));
            }
            self.drafts[d].person = Some(slots[k]);
        }
    }

    fn resubmissions(&mut self, n: usize) {
        let end = self.end();
        let candidates: Vec<usize> = (0..self.drafts.len())
            .filter(|&i| self.drafts[i].at + Duration::days(2) < end)
            .collect();
        if candidates.is_empty() {
            return;
        }
        for _ in 0..n {
            let of = candidates[self.rng.below(candidates.len())];
            let left = (end - self.drafts[of].at).num_days() - 1;
            let gap = self
                .size(&[(35, 1, 30), (35, 31, 90), (30, 91, 330)])
                .min(left.max(1) as usize) as i64;
            let at = random_time(
                &mut self.rng,
                (self.drafts[of].at + Duration::days(gap))
                    .date()
                    .and_time(NaiveTime::MIN),
                1,
            )
            .max(self.drafts[of].at + Duration::hours(1))
            .min(end);
            self.drafts.push(Draft {
                person: self.drafts[of].person,
                issue: self.drafts[of].issue,
                at,
                text: Text::Copy { of },
                likes_max: self.drafts[of].likes_max,
            });
        }
    }

    fn render(mut self, classes: Vec<RateClass>, pool_size: usize) -> YearCorpus {
        let mut texts: Vec<(String, String)> = Vec::with_capacity(self.drafts.len());
        for i in 0..self.drafts.len() {
            let t = self.render_one(i, &texts);
            texts.push(t);
        }
        let mut order: Vec<usize> = (0..self.drafts.len()).collect();
        order.sort_by_key(|&i| (self.drafts[i].at, i));
        let mut row_of = vec![0u64; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            row_of[i] = 400_000 + pos as u64;
        }
        let mut rows = Vec::with_capacity(order.len());
        let mut likes_rng = self.rng.fork("likes");
        for &i in &order {
            let d = &self.drafts[i];
            let (title, body) = std::mem::take(&mut texts[i]);
            rows.push(YearRow {
                row_id: row_of[i],
                person: d.person.unwrap_or(0),
                at: d.at,
                title,
                body,
                likes: likes_rng.below(d.likes_max as usize + 1) as u32,
                dislikes: u32::from(likes_rng.chance(0.05)),
                issue: d.issue,
                resubmission_of: match d.text {
                    Text::Copy { of } => Some(row_of[of]),
                    Text::Base(_) => None,
                },
            });
        }
        let mut people: Vec<HashSet<usize>> = vec![HashSet::new(); self.issues.len()];
        for r in &rows {
            if let Some(i) = r.issue {
                self.issues[i].rows += 1;
                people[i].insert(r.person);
            }
        }
        for (issue, p) in self.issues.iter_mut().zip(people) {
            issue.complainants = p.len();
        }
        YearCorpus {
            rows,
            issues: self.issues,
            classes,
            pool_size,
        }
    }

    /// (title, body) of draft `i`; `done` holds the drafts before it.
    fn render_one(&mut self, i: usize, done: &[(String, String)]) -> (String, String) {
        let rng = &mut self.rng;
        let Varied {
            base,
            place,
            map,
            district,
            strength,
            intro,
            splice,
            again,
        } = match &self.drafts[i].text {
            Text::Copy { of } => {
                let (title, body) = &done[*of];
                let mut s = vary::edit_sentences(rng, &pool::split_sentences(body), RESUBMIT);
                if rng.chance(0.5) {
                    vary::add_again(rng, &mut s);
                }
                let body = vary::edit_words(rng, &s.concat(), RESUBMIT);
                return (title.clone(), body);
            }
            Text::Base(v) => v.clone(),
        };
        let b = &self.pool[base];
        let mut sentences = vary::edit_sentences(rng, &b.sentences, strength);
        if let Some(other) = splice {
            let keep = sentences.len().div_ceil(2);
            sentences.truncate(keep);
            let more = &self.pool[other].sentences;
            sentences.extend(more.iter().skip(1).take(keep.max(2)).cloned());
        }
        if again {
            vary::add_again(rng, &mut sentences);
        }
        let mut body = sentences.concat();
        let mut title = b.title.clone();
        let mut names = self.maps[map].clone();
        if let Some(p) = place {
            let written = if rng.chance(p.unnamed) {
                rng.pick(vary::UNNAMED).to_string()
            } else {
                self.places[p.place].variant(rng, p.oddity)
            };
            match b.places.first() {
                Some(own) => names.push((own.clone(), written)),
                None if intro.is_none() => body = format!("我住在{written}，{body}"),
                None => {}
            }
        }
        if let Some(intro) = intro {
            body = format!("{intro}{body}");
        }
        body = vary::replace_places(&body, &names);
        title = vary::replace_places(&title, &names);
        let city = if rng.chance(0.7) { "芜湖市" } else { "" };
        body = vary::decode_admin(&body, city, district);
        title = vary::decode_admin(&title, city, district);
        let body = vary::edit_words(rng, &body, strength);
        if title.is_empty() || rng.chance(0.1) {
            title = body.chars().take(20).collect();
        }
        (title, body)
    }
}

/// How a resubmission differs from the filing it repeats.
const RESUBMIT: EditStrength = EditStrength {
    drop: 0.1,
    swap: 0.1,
    synonym: 0.2,
    insert: 1,
    typos: 2,
    short: 0.0,
};

/// Sentences a habitual poster writes every time.
const HABITS: &[&str] = &[
    "作为一名老党员，我有责任反映这个问题。",
    "本人长期关注城市建设，特提出以下意见。",
    "我是一名退休干部，看到这种情况很痛心。",
    "作为纳税人，我认为有必要向政府反映。",
    "本人多年来一直关心民生问题。",
    "我是一名普通市民，但对这座城市很有感情。",
];

impl YearCorpus {
    /// Writes export.csv, truth.csv and truth.json into `dir` (created if missing).
    pub fn write(&self, dir: &Path, args: &serde_json::Value) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(EXPORT_FILE);
        let mut w =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(EXPORT_HEADER)?;
        for (k, r) in self.rows.iter().enumerate() {
            let at = if k % 3 == 0 {
                r.at.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                r.at.format("%Y/%-m/%-d %H:%M:%S").to_string()
            };
            w.write_record([
                r.row_id.to_string(),
                self.user(r.person),
                r.title.clone(),
                at,
                r.body.clone(),
                r.dislikes.to_string(),
                r.likes.to_string(),
            ])?;
        }
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        let path = dir.join(TRUTH_FILE);
        let mut w =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(TRUTH_HEADER)?;
        for r in &self.rows {
            let issue = r.issue.map(|i| &self.issues[i]);
            w.write_record([
                r.row_id.to_string(),
                self.user(r.person),
                issue.map(|i| i.id.clone()).unwrap_or_default(),
                issue
                    .map(|i| i.kind.as_str().to_string())
                    .unwrap_or_default(),
                issue.and_then(|i| i.place.clone()).unwrap_or_default(),
                issue.and_then(|i| i.template.clone()).unwrap_or_default(),
                r.resubmission_of.map(|r| r.to_string()).unwrap_or_default(),
                self.classes
                    .get(r.person)
                    .map_or("", |c| c.as_str())
                    .to_string(),
            ])?;
        }
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        let summary = serde_json::json!({
            "args": args,
            "rows": self.rows.len(),
            "pool_messages": self.pool_size,
            "mean_body_chars": self.mean_body_chars(),
            "counts": self.counts(),
            "issues": self.issues,
        });
        let path = dir.join(SUMMARY_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// What was planted, counted.
    pub fn counts(&self) -> serde_json::Value {
        let mut by_kind = serde_json::Map::new();
        for kind in [
            IssueKind::Place,
            IssueKind::City,
            IssueKind::Template,
            IssueKind::Poster,
        ] {
            let of: Vec<&PlantedIssue> = self.issues.iter().filter(|i| i.kind == kind).collect();
            by_kind.insert(
                kind.as_str().into(),
                serde_json::json!({
                    "issues": of.len(),
                    "rows": of.iter().map(|i| i.rows).sum::<usize>(),
                    "crowd_sized": of.iter().filter(|i| i.complainants >= 5).count(),
                }),
            );
        }
        let mut filings = vec![0usize; self.classes.len()];
        for r in &self.rows {
            filings[r.person] += 1;
        }
        let people = filings.iter().filter(|&&n| n > 0).count();
        let mut sorted: Vec<usize> = filings.iter().copied().filter(|&n| n > 0).collect();
        sorted.sort_unstable();
        serde_json::json!({
            "issues": by_kind,
            "resubmissions": self.rows.iter().filter(|r| r.resubmission_of.is_some()).count(),
            "background_rows": self.rows.iter().filter(|r| r.issue.is_none()).count(),
            "people": people,
            "median_filings": sorted.get(sorted.len() / 2).copied().unwrap_or(0),
            "posters_with_10_or_more": filings.iter().filter(|&&n| n >= 10).count(),
            "most_filings": sorted.last().copied().unwrap_or(0),
        })
    }
}

/// `duban sim year`: generates and writes the corpus; prints one line of what it holds.
pub fn run(args: &YearArgs) -> anyhow::Result<()> {
    let teddy = args.teddy.clone().unwrap_or_else(default_teddy_dir);
    let corpus = generate(args.rows, args.days, args.seed, args.end_date, &teddy)?;
    let echo = serde_json::json!({
        "rows": args.rows, "days": args.days, "seed": args.seed,
        "end_date": args.end_date.to_string(),
    });
    corpus.write(&args.out, &echo)?;
    let c = corpus.counts();
    println!(
        "wrote {} rows to {} (export.csv, truth.csv, truth.json): {} planted issues, {} \
         resubmissions, {} posters with 10+ filings, mean text {:.0} chars",
        corpus.rows.len(),
        args.out.display(),
        corpus.issues.len(),
        c["resubmissions"],
        c["posters_with_10_or_more"],
        corpus.mean_body_chars()
    );
    Ok(())
}

#[cfg(test)]
mod tests;
