//! [`Descriptor`]: the static description of one guarded map (its label, backend kind, options,
//! types and source location). Plain data: every layer may read it, it reads no other module.

use guarded_map_probe_common::ActiveBackend;
/// Which concurrency strategy a map uses. Its code (`#[repr(u8)]`) is the one the probe's records
/// carry, defined and decoded in `guarded-map-probe-common` alone.
pub use guarded_map_probe_common::BackendKind;

/// Whether a map gives memory back when it empties (`shrink = auto | never`).
///
/// With [`Auto`](Shrink::Auto), the default, a table that has been at most 1/8 full at every
/// write for a second is rebuilt for its entries plus an eighth, never below the capacity the map
/// was made with: a `Sharded` map's shards one by one, an `Rcu` map's whole tree. Growing doubles
/// a full table, so a map that refills after a shrink does not thrash: its entries must fall by
/// seven eighths again, for a second, before the next shrink. The check runs on writes (a map no longer written keeps
/// its tables until `shrink_to_fit`). Shrinks are counted in `Stats::shrinks` and
/// `guarded_map_shrinks_total`, the bytes given back in `guarded_map_shrunk_bytes_total`.
///
/// ```
/// use guarded_map::{BackendKind, Descriptor, Shrink};
///
/// const CACHE: Descriptor = Descriptor::new("app::cache", BackendKind::Sharded).shrink(Shrink::Never);
/// assert_eq!(CACHE.shrink_policy(), Shrink::Never);
/// assert_eq!(Descriptor::new("app::x", BackendKind::Rcu).shrink_policy(), Shrink::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shrink {
    /// Tables shrink after staying at most 1/8 full for a second (see [`Shrink`]).
    #[default]
    Auto,
    /// Tables keep the capacity they grew to (`shrink_to_fit` still shrinks them).
    Never,
}

/// Why a [`Descriptor`] is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `shards` was zero or not a power of two.
    ShardsNotPowerOfTwo(usize),
    /// `shards` exceeded [`Descriptor::MAX_SHARDS`].
    TooManyShards(usize),
    /// `max_len` was zero: such a map could never hold anything.
    ZeroMaxLen,
    /// `shards` was given for the `Rcu` backend, which sizes its shards itself.
    ShardsOnRcu,
    /// `hot_keys` exceeded [`Descriptor::MAX_HOT_KEYS`].
    TooManyHotKeys(usize),
    /// An option that does not apply to an ordered map (`shards`, `hot_keys`, `shrink`).
    NotForOrdered(&'static str),
    /// An option of the adaptive backend (`start`, `pin`) was given for another backend.
    NotAdaptive(&'static str),
    /// An adaptive map was pinned to one form and told to start in the other.
    PinNotStart,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::ShardsNotPowerOfTwo(n) => {
                write!(f, "shard count must be a power of two greater than zero, got {n}")
            }
            ConfigError::TooManyShards(n) => write!(
                f,
                "shard count must be at most {}, got {n}",
                Descriptor::MAX_SHARDS
            ),
            ConfigError::ZeroMaxLen => f.write_str("max_len must be greater than zero"),
            ConfigError::ShardsOnRcu => f.write_str(
                "shards applies to the sharded backend only; the rcu backend sizes its shards itself",
            ),
            ConfigError::NotForOrdered(option) => write!(
                f,
                "{option} does not apply to an ordered map (it has no shards, samples no hashed \
                 keys, and its tree holds no unused capacity)"
            ),
            ConfigError::TooManyHotKeys(n) => write!(
                f,
                "hot_keys must be at most {}, got {n}",
                Descriptor::MAX_HOT_KEYS
            ),
            ConfigError::NotAdaptive(option) => write!(
                f,
                "{option} applies to the adaptive backend only (the only one with two forms)"
            ),
            ConfigError::PinNotStart => f.write_str(
                "an adaptive map pinned to one form cannot start in the other (a pin sets the form \
                 it starts in: drop `start`)",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything known about one guarded map at compile time.
///
/// Built with a `const` builder so that it can live in a `static` and be collected by `inventory`
/// before any map exists:
///
/// ```
/// use guarded_map::{BackendKind, Descriptor};
///
/// static ROUTES: Descriptor = Descriptor::new("app::State.routes", BackendKind::Sharded)
///     .shards(16)
///     .max_len(10_000)
///     .help("Routing table, keyed by path prefix.");
/// assert_eq!(ROUTES.shards_or_default(), 16);
/// assert!(ROUTES.validate().is_ok());
/// ```
#[derive(Debug)]
pub struct Descriptor {
    name: &'static str,
    backend: BackendKind,
    shards: usize,
    shards_set: bool,
    max_len: usize,
    max_len_set: bool,
    stats: bool,
    hot_keys: usize,
    hot_keys_set: bool,
    shrink: Shrink,
    shrink_set: bool,
    /// An adaptive map's first form (`None`: `Sharded`).
    start: Option<ActiveBackend>,
    /// The form an adaptive map is held in until unpinned (`None`: its cost model decides).
    pin: Option<ActiveBackend>,
    bpf_map: Option<&'static str>,
    help: Option<&'static str>,
    key_type: &'static str,
    value_type: &'static str,
    module_path: &'static str,
    file: &'static str,
    line: u32,
}

impl Descriptor {
    /// The largest accepted shard count.
    pub const MAX_SHARDS: usize = 1 << 16;
    /// Hot-key ranks a map publishes unless its spec says otherwise (`hot_keys = k`).
    pub const DEFAULT_HOT_KEYS: usize = 5;
    /// The most hot-key ranks a map may publish.
    pub const MAX_HOT_KEYS: usize = 64;

    /// A descriptor with the given metric label and backend, every option at its default.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(ROUTES.label(), "app::routes");
    /// assert_eq!(ROUTES.max_len_limit(), None);
    /// ```
    pub const fn new(name: &'static str, backend: BackendKind) -> Self {
        Descriptor {
            name,
            backend,
            shards: 0,
            shards_set: false,
            max_len: 0,
            max_len_set: false,
            stats: true,
            hot_keys: Self::DEFAULT_HOT_KEYS,
            hot_keys_set: false,
            shrink: Shrink::Auto,
            shrink_set: false,
            start: None,
            pin: None,
            bpf_map: None,
            help: None,
            key_type: "",
            value_type: "",
            module_path: "",
            file: "",
            line: 0,
        }
    }

    /// Renames the metric label (`map="..."`).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(ROUTES.name("routes").label(), "routes");
    /// ```
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Sets the shard count of the `Sharded` backend (a power of two).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.shard_count(), Some(16));
    /// ```
    pub const fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self.shards_set = true;
        self
    }

    /// Bounds the map to `max_len` entries: inserting a new key beyond it fails
    /// ([`GuardedMap::try_insert`](crate::GuardedMap::try_insert)).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.max_len_limit(), Some(100_000));
    /// ```
    pub const fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self.max_len_set = true;
        self
    }

    /// Turns the per-map statistics on (the default) or compiles them out of this map's hot path.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert!(!SESSIONS.stats_enabled());
    /// ```
    pub const fn stats(mut self, on: bool) -> Self {
        self.stats = on;
        self
    }

    /// Whether the map's tables give memory back when it empties (see [`Shrink`]).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor, Shrink};
    ///
    /// const CACHE: Descriptor = Descriptor::new("app::cache", BackendKind::Rcu).shrink(Shrink::Never);
    /// assert_eq!(CACHE.shrink_policy(), Shrink::Never);
    /// ```
    pub const fn shrink(mut self, policy: Shrink) -> Self {
        self.shrink = policy;
        self.shrink_set = true;
        self
    }

    /// The form an adaptive map starts in (`Sharded` unless set); only for the adaptive backend.
    ///
    /// `Sharded` is the default because its worst case is mild: on a read-only load it runs at
    /// about a third of `Rcu`'s speed until the map switches, where `Rcu` under writes can run
    /// 30x slower than `Sharded` (see `BENCHMARKS.md`).
    ///
    /// ```
    /// use guarded_map::{ActiveBackend, BackendKind, Descriptor};
    ///
    /// const COUNTS: Descriptor =
    ///     Descriptor::new("app::counts", BackendKind::Adaptive).start(ActiveBackend::Rcu);
    /// assert_eq!(COUNTS.start_form(), ActiveBackend::Rcu);
    /// assert!(Descriptor::new("app::x", BackendKind::Rcu).start(ActiveBackend::Rcu).validate().is_err());
    /// ```
    pub const fn start(mut self, form: ActiveBackend) -> Self {
        self.start = Some(form);
        self
    }

    /// Pins an adaptive map to `form`: it starts there and stays until unpinned in code
    /// ([`GuardedMap::unpin_backend`](crate::GuardedMap::unpin_backend)) or from outside
    /// (`guarded-map-probe pin --pid PID --map LABEL auto`). Its cost model still estimates,
    /// so [`GuardedMap::backend_estimate`](crate::GuardedMap::backend_estimate) can tell
    /// whether the pin is the better choice.
    ///
    /// ```
    /// use guarded_map::{ActiveBackend, BackendKind, Descriptor};
    ///
    /// const ROUTES: Descriptor =
    ///     Descriptor::new("app::routes", BackendKind::Adaptive).pin(ActiveBackend::Rcu);
    /// assert_eq!(ROUTES.pinned_form(), Some(ActiveBackend::Rcu));
    /// assert_eq!(ROUTES.start_form(), ActiveBackend::Rcu);
    /// // A pin and a different start contradict each other.
    /// assert!(ROUTES.start(ActiveBackend::Sharded).validate().is_err());
    /// ```
    pub const fn pin(mut self, form: ActiveBackend) -> Self {
        self.pin = Some(form);
        self
    }

    /// The form an adaptive map is pinned to from its creation, if any.
    pub const fn pinned_form(&self) -> Option<ActiveBackend> {
        self.pin
    }

    /// The form an adaptive map starts in.
    pub const fn start_form(&self) -> ActiveBackend {
        match (self.pin, self.start) {
            (Some(form), _) | (None, Some(form)) => form,
            (None, None) => ActiveBackend::Sharded,
        }
    }

    /// The map's shrink policy.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor, Shrink};
    ///
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(ROUTES.shrink_policy(), Shrink::Auto);
    /// ```
    pub const fn shrink_policy(&self) -> Shrink {
        self.shrink
    }

    /// How many hot keys the map ranks and publishes (`guarded_map_hot_key_share{rank}` for ranks
    /// 1..=k); 0 turns hot-key tracking off for the map (its operations then skip the sampling
    /// entirely). The default is [`DEFAULT_HOT_KEYS`](Self::DEFAULT_HOT_KEYS); at most
    /// [`MAX_HOT_KEYS`](Self::MAX_HOT_KEYS). Maps without statistics track none.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const PRICES: Descriptor = Descriptor::new("app::prices", BackendKind::Rcu).hot_keys(10);
    /// const QUIET: Descriptor = Descriptor::new("app::quiet", BackendKind::Rcu).hot_keys(0);
    /// assert_eq!((PRICES.hot_key_ranks(), QUIET.hot_key_ranks()), (10, 0));
    /// ```
    pub const fn hot_keys(mut self, k: usize) -> Self {
        self.hot_keys = k;
        self.hot_keys_set = true;
        self
    }

    /// The hot-key ranks the map tracks and publishes (0 when it tracks none: also when its
    /// statistics are off, and for an ordered map, which samples no hashed keys).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// const QUIET: Descriptor = Descriptor::new("app::quiet", BackendKind::Rcu).stats(false);
    /// assert_eq!(ROUTES.hot_key_ranks(), Descriptor::DEFAULT_HOT_KEYS);
    /// assert_eq!(QUIET.hot_key_ranks(), 0);
    /// ```
    pub const fn hot_key_ranks(&self) -> usize {
        if self.stats && !matches!(self.backend, BackendKind::Ordered) {
            self.hot_keys
        } else {
            0
        }
    }

    /// Names the kernel BPF map this map mirrors, for the eBPF probe.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.bpf_map_name(), Some("sessions"));
    /// ```
    pub const fn bpf_map(mut self, name: &'static str) -> Self {
        self.bpf_map = Some(name);
        self
    }

    /// Sets the help text published with the map's metrics.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.help_text(), Some("Sessions by id."));
    /// ```
    pub const fn help(mut self, help: &'static str) -> Self {
        self.help = Some(help);
        self
    }

    /// Records the key and value type names (as written in the source).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!((SESSIONS.key_type(), SESSIONS.value_type()), ("u64", "String"));
    /// ```
    pub const fn types(mut self, key_type: &'static str, value_type: &'static str) -> Self {
        self.key_type = key_type;
        self.value_type = value_type;
        self
    }

    /// Records where the map was declared.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!((SESSIONS.module_path(), SESSIONS.file(), SESSIONS.line()), ("app", "src/app.rs", 12));
    /// ```
    pub const fn location(
        mut self,
        module_path: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        self.module_path = module_path;
        self.file = file;
        self.line = line;
        self
    }

    /// The metric label (`map="..."`): `module::Struct.field` unless renamed.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.label(), "app::sessions");
    /// ```
    pub const fn label(&self) -> &'static str {
        self.name
    }
    /// The backend.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(ROUTES.backend(), BackendKind::Rcu);
    /// ```
    pub const fn backend(&self) -> BackendKind {
        self.backend
    }
    /// The configured shard count, if one was set (see [`Self::shards_or_default`]).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!((SESSIONS.shard_count(), ROUTES.shard_count()), (Some(16), None));
    /// ```
    pub const fn shard_count(&self) -> Option<usize> {
        if self.shards_set {
            Some(self.shards)
        } else {
            None
        }
    }
    /// The shard count a new `Sharded` map gets: the configured one, or four per core rounded up to a
    /// power of two (at least 4, at most 256) when none was configured.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.shards_or_default(), 16);
    /// let default = Descriptor::new("x", BackendKind::Sharded).shards_or_default();
    /// assert!(default.is_power_of_two() && (4..=256).contains(&default));
    /// ```
    pub fn shards_or_default(&self) -> usize {
        if self.shards_set {
            return self.shards;
        }
        // Asked once: the standard library reads the cgroup's files each time (tens of
        // microseconds, most of creating a map).
        static DEFAULT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *DEFAULT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
            (cores * 4).next_power_of_two().clamp(4, 256)
        })
    }
    /// The bound on the number of entries, if any.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!((SESSIONS.max_len_limit(), ROUTES.max_len_limit()), (Some(100_000), None));
    /// ```
    pub const fn max_len_limit(&self) -> Option<usize> {
        if self.max_len_set {
            Some(self.max_len)
        } else {
            None
        }
    }
    /// Whether statistics are collected.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert!(ROUTES.stats_enabled() && !SESSIONS.stats_enabled());
    /// ```
    pub const fn stats_enabled(&self) -> bool {
        self.stats
    }
    /// The kernel BPF map this map mirrors, if named.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(ROUTES.bpf_map_name(), None);
    /// ```
    pub const fn bpf_map_name(&self) -> Option<&'static str> {
        self.bpf_map
    }
    /// The help text, if any.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(ROUTES.help_text(), None);
    /// ```
    pub const fn help_text(&self) -> Option<&'static str> {
        self.help
    }
    /// The key type as written in the source (empty when unknown).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.key_type(), "u64");
    /// ```
    pub const fn key_type(&self) -> &'static str {
        self.key_type
    }
    /// The value type as written in the source (empty when unknown).
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.value_type(), "String");
    /// ```
    pub const fn value_type(&self) -> &'static str {
        self.value_type
    }
    /// The module that declared the map.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.module_path(), "app");
    /// ```
    pub const fn module_path(&self) -> &'static str {
        self.module_path
    }
    /// The source file that declared the map.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.file(), "src/app.rs");
    /// ```
    pub const fn file(&self) -> &'static str {
        self.file
    }
    /// The line that declared the map.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// assert_eq!(SESSIONS.line(), 12);
    /// ```
    pub const fn line(&self) -> u32 {
        self.line
    }

    /// Checks the options: shard count a power of two, `max_len` not zero.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// use guarded_map::ConfigError;
    /// assert_eq!(SESSIONS.validate(), Ok(()));
    /// let bad = Descriptor::new("x", BackendKind::Sharded).shards(3);
    /// assert_eq!(bad.validate(), Err(ConfigError::ShardsNotPowerOfTwo(3)));
    /// ```
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.shards_set && matches!(self.backend, BackendKind::Rcu) {
            return Err(ConfigError::ShardsOnRcu);
        }
        if self.shards_set && !self.shards.is_power_of_two() {
            return Err(ConfigError::ShardsNotPowerOfTwo(self.shards));
        }
        if self.shards > Self::MAX_SHARDS {
            return Err(ConfigError::TooManyShards(self.shards));
        }
        if self.max_len_set && self.max_len == 0 {
            return Err(ConfigError::ZeroMaxLen);
        }
        if self.hot_keys > Self::MAX_HOT_KEYS {
            return Err(ConfigError::TooManyHotKeys(self.hot_keys));
        }
        if !matches!(self.backend, BackendKind::Adaptive) {
            if self.start.is_some() {
                return Err(ConfigError::NotAdaptive("start"));
            }
            if self.pin.is_some() {
                return Err(ConfigError::NotAdaptive("pin"));
            }
        }
        if let (Some(pin), Some(start)) = (self.pin, self.start)
            && pin as u8 != start as u8
        {
            return Err(ConfigError::PinNotStart);
        }
        if matches!(self.backend, BackendKind::Ordered) {
            if self.shards_set {
                return Err(ConfigError::NotForOrdered("shards"));
            }
            if self.hot_keys_set {
                return Err(ConfigError::NotForOrdered("hot_keys"));
            }
            if self.shrink_set {
                return Err(ConfigError::NotForOrdered("shrink"));
            }
        }
        Ok(())
    }

    /// Like [`Self::validate`], but fails compilation when evaluated in a `const` context.
    ///
    /// [`map_spec!`](crate::map_spec) and every [`GuardedMap`](crate::GuardedMap) constructor evaluate
    /// it at compile time, so an invalid spec never builds.
    ///
    /// ```
    /// use guarded_map::{BackendKind, Descriptor};
    ///
    /// const SESSIONS: Descriptor = Descriptor::new("app::sessions", BackendKind::Sharded)
    ///     .shards(16)
    ///     .max_len(100_000)
    ///     .stats(false)
    ///     .bpf_map("sessions")
    ///     .help("Sessions by id.")
    ///     .types("u64", "String")
    ///     .location("app", "src/app.rs", 12);
    /// const ROUTES: Descriptor = Descriptor::new("app::routes", BackendKind::Rcu);
    /// const _: () = SESSIONS.assert_valid(); // an invalid descriptor here would not compile
    /// ```
    pub const fn assert_valid(&self) {
        match self.validate() {
            Ok(()) => {}
            Err(ConfigError::ShardsNotPowerOfTwo(_)) => {
                panic!("guarded-map: `shards` must be a power of two greater than zero")
            }
            Err(ConfigError::TooManyShards(_)) => {
                panic!("guarded-map: `shards` must be at most 65536")
            }
            Err(ConfigError::ZeroMaxLen) => {
                panic!("guarded-map: `max_len` must be greater than zero")
            }
            Err(ConfigError::ShardsOnRcu) => {
                panic!("guarded-map: `shards` applies to the sharded backend only")
            }
            Err(ConfigError::TooManyHotKeys(_)) => {
                panic!("guarded-map: `hot_keys` must be at most 64")
            }
            Err(ConfigError::NotForOrdered(_)) => {
                panic!(
                    "guarded-map: `shards`, `hot_keys` and `shrink` do not apply to an ordered map"
                )
            }
            Err(ConfigError::NotAdaptive(_)) => {
                panic!("guarded-map: `start` and `pin` apply to the adaptive backend only")
            }
            Err(ConfigError::PinNotStart) => {
                panic!("guarded-map: an adaptive map pinned to one form cannot start in the other")
            }
        }
    }
}
