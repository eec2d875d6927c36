"""Every default path and number of the workbench, in one place.

Functions, CLI options and notebook ``parameters`` cells take their
defaults from here (notebook cells stay literal, as papermill needs, and a
test fails when one drifts from its constant). Nothing here touches the
file system at import time, and nothing is imported but the standard library.
"""
import os
from pathlib import Path

# -- paths ------------------------------------------------------------------------------------

#: The checkout that holds ``workbench/``, ``data/`` and ``reports/``.
PROJECT_ROOT = Path(os.environ.get("WORKBENCH_ROOT", Path(__file__).resolve().parent.parent))
DATA_DIR = PROJECT_ROOT / "data"
TAXONOMY_PATH = DATA_DIR / "taxonomy.yaml"
POOL_DIR = DATA_DIR / "pool"
TEMPLATES_DIR = DATA_DIR / "templates"
TRANSCRIPTS_DIR = DATA_DIR / "transcripts"
SHADOW_DIR = DATA_DIR / "shadow"
#: Derived data (embedding caches, label caches, candidates): git-ignored, safe to delete.
INTERIM_DIR = DATA_DIR / "interim"
CACHE_DIR = INTERIM_DIR / "embeddings"
PROJECTION_CACHE_DIR = INTERIM_DIR / "projections"
LABEL_CACHE_PATH = INTERIM_DIR / "labels" / "label_cache.jsonl"
REPORTS_DIR = PROJECT_ROOT / "reports"
#: Where interactive notebook runs write (the nightly passes its own run folder).
SCRATCH_DIR = REPORTS_DIR / "scratch"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
#: Where the public benchmark prompts live (evaluation only, never copied into the pool).
EXTERNAL_DIR = PROJECT_ROOT.parent / "shared" / "external"
#: Labelled sets the pool never saw (a verbatim copy of the external prompts): scored by every report.
EVAL_DIR = DATA_DIR / "eval"
#: Labelled short conversations (user turns), an evaluation set for conversation routing.
CONVERSATIONS_DIR = DATA_DIR / "conversations"
#: Development sets, written apart from the pool: their errors decide what to change (data/eval only reports).
DEV_DIR = DATA_DIR / "dev"
#: The gateway's decision log read by the traffic section (``decisions-*.jsonl``, ``feedback-*.jsonl``): a bundled
#: sample made by routing the bundled transcripts and conversations through the gateway (see its README).
TRAFFIC_DIR = DATA_DIR / "traffic"
#: The gateway's daily files in a decision-log folder: decisions, and the feedback that rates them.
DECISIONS_GLOB, FEEDBACK_GLOB = "decisions-*.jsonl", "feedback-*.jsonl"

# -- embedding ----------------------------------------------------------------------------------

#: The ensemble of the two bundled encoders: it beat e5-small alone in-pool (leave-one-out and folds) and on the
#: public benchmark prompts, at about 1.2x e5-small's route latency (benchmarks/generalisation.py, ensemble_latency.py).
DEFAULT_BACKEND = "e5-small+use-multilingual"
#: Backend whose cosines DUP_THRESHOLD is measured in for the data checks (the datasheet's diversity figures, the
#: data writers' checker): near-duplicate figures stay comparable when the routing backend changes.
DUP_BACKEND = "e5-small"
#: A backend that declares its languages (USE-multilingual: 16) covers a text when at least this share of the
#: text's letters is in those languages' scripts (core.scripts); a composite backend replaces an uncovered part
#: (scripts/language_loo.py: Vietnamese texts have 5-30% tone letters, an English text naming a Vietnamese place
#: a few percent).
PART_MIN_COVERED_SHARE = 0.95
#: L2 penalty of the map from one part's space into another's (scripts/fit_part_map.py; 0.1 and 1.0 were tried on
#: the pool's leave-one-out, 0.1 won for Hindi and Vietnamese and matched on the other languages).
PART_MAP_RIDGE = 0.1
#: Texts embedded (and cached) per step.
EMBED_CHUNK_SIZE = 256
#: Longest text (characters) an encoder is given, unless a backend sets its own ``max_chars``: about 512
#: tokens of English (the E5 window); longer texts are cut (see ``workbench.core.text``).
MAX_TEXT_CHARS = 2048
#: Of a text over the cap, the end kept after its beginning (at most a quarter of the cap): a long paste's question
#: comes after it. Pasted-context messages in data/dev ask it in the last few hundred characters.
MAX_TEXT_TAIL_CHARS = 512
#: Most texts, and about how many characters, per encoder call (a backend may set its own; see core.embed).
EMBED_BATCH_ITEMS = 64
EMBED_BATCH_CHARS = 16384
#: Rows per Parquet shard of ``workbench embed``: the unit of work, of resuming and of a Ray task.
EMBED_SHARD_ROWS = 2048

# -- k-NN -----------------------------------------------------------------------------------------

#: The k-NN configuration a router gets when nothing is swept (see ``core.knn.KNNConfig``).
K = 7
VOTE = "distance"
#: Softmax-vote temperature.
TEMPERATURE = 0.05
CENTER = True
#: k values the sweep tries.
SWEEP_KS = (1, 3, 5, 7, 9, 15, 21, 31, 45)

# -- pool.npz limits (what the loader reads before it trusts a file) -----------------------------

ARTIFACT_MAX_ROWS = 10_000_000
ARTIFACT_MAX_DIM = 8192
ARTIFACT_MAX_CATEGORIES = 1000
ARTIFACT_MAX_ID_CHARS = 512
#: Bytes of the JSON metadata member.
ARTIFACT_MAX_METADATA_BYTES = 4 * 2**20
#: Members (arrays) in one file.
ARTIFACT_MAX_MEMBERS = 64
#: The one reader's caps (:func:`workbench.io.read_limits`): longest line and largest input file, in bytes.
#: ``WORKBENCH_MAX_LINE_BYTES`` / ``WORKBENCH_MAX_FILE_BYTES`` override them (a bigger log: shard it with ``embed``).
READ_MAX_LINE_BYTES = 4 * 2**20
READ_MAX_FILE_BYTES = 2**30
#: How far the embeddings member may expand when decompressed: real vectors compress about 1.1x (int8 and
#: float32 alike), so a member declaring more than this many times its compressed size is a bomb, refused
#: before any data is read. Every other member's budget follows from the rows this bounds.
ARTIFACT_MAX_VECTOR_RATIO = 8

# -- approximate search (big pools) ------------------------------------------------------------------

#: Pool rows from which ``export`` stores an HNSW index for the router's per-message searches (below: exact).
#: Batch searches (leave-one-out, coverage) choose exact or HNSW by their estimated cost instead (SEARCH_*).
ANN_THRESHOLD = 50_000
#: HNSW graph degree, build-time and search-time beam widths (faiss ``M``, ``efConstruction``, ``efSearch``).
ANN_M = 32
ANN_EF_CONSTRUCTION = 100
ANN_EF_SEARCH = 64
#: Rows whose approximate leave-one-out neighbours are checked against exact search (recall@k).
ANN_RECALL_SAMPLE = 1000

#: The cost model that picks exact or HNSW search (``core.search.choose_search``), measured on the project's
#: shared 2-core machine (Xeon, AVX-512, OpenBLAS 0.3.31; load average 10-13 from other jobs) by
#: ``benchmarks/search.py`` at 896 dimensions: float32 matrix-product throughput (flop/s; 1M x 4,020 coverage
#: took 110-121 s), the selection per query-pool pair (s), and faiss HNSW (M=32, efConstruction=100,
#: efSearch=64) build seconds per row and search seconds per query, both per dimension (50,000-row
#: leave-one-out through HNSW 84 s; 1M queries against 4,020 rows 0.37-0.59 ms a query). Under that load
#: they put the crossover for leave-one-out between 200,000 and 300,000 rows. HNSW must be estimated this many
#: times faster.
SEARCH_EXACT_FLOPS = 65e9
SEARCH_SELECT_S = 2.0e-9
SEARCH_HNSW_BUILD_S = 1.4e-6
SEARCH_HNSW_QUERY_S = 5.0e-7
SEARCH_HNSW_MARGIN = 2.0
#: Pool rows below which search is always exact (an index's build and recall check never pay off).
SEARCH_HNSW_MIN_ROWS = 20_000
#: Reduced search (``core.search.reduced_top_k``): exact search in the pool's leading principal directions, its
#: candidates re-ranked exactly. Plans tried, cheapest first: each of these dimension counts with k times each of
#: these candidate factors (at least 4 candidates); the first whose recall@k on ``ANN_RECALL_SAMPLE`` seeded
#: queries reaches the floor is kept, else the search is exact. Re-ranking costs about this many seconds per
#: candidate and dimension (fitted to benchmarks/search.py, 1M x 4,020 coverage at 896 dimensions, load 7-8:
#: 64 dims and 8 candidates 66 s, 256 dims and 14 candidates 82 s, exact 64-81 s); a plan (and the method in
#: ``choose_search``) must be estimated this many times faster than exact search. Measured so far it is not
#: faster (896 dims, k=1, load 4: reduced 62 s, exact 52 s; 384 dims: 15 s and 17 s), so the margin keeps
#: exact search at these sizes; ``nearest_neighbors(method="reduced")`` still runs it.
SEARCH_REDUCED_DIMS = (64, 128, 192, 256)
SEARCH_REDUCED_CANDIDATES = (2, 4, 8)
SEARCH_REDUCED_MIN_RECALL = 0.99
SEARCH_RERANK_S = 5.0e-9
SEARCH_REDUCED_MARGIN = 4.0

# -- near-duplicates and clusters -----------------------------------------------------------------

#: Cosine at or above which two messages are near-duplicates.
DUP_THRESHOLD = 0.95
#: Mean cosine within a cluster (average linkage) for cluster counts.
CLUSTER_THRESHOLD = 0.85

# -- randomness -----------------------------------------------------------------------------------

#: Seed of every random step: UMAP layouts, samples, folds, perturbations, backoff jitter.
SEED = 0
#: UMAP neighbourhood size.
UMAP_NEIGHBORS = 15
UMAP_MIN_DIST = 0.1

# -- decisions ------------------------------------------------------------------------------------

#: Stored vector precision of pool.npz: int8 with a per-dimension scale is a quarter of float32 and half of float16,
#: and routes the bundled pool as float32 does (workbench.core.artifact.quantize).
EXPORT_DTYPE = "int8"
#: Decision policy fitted by default: "vote", "cost" or "any" (the fit chooses).
DECISION_POLICY = "any"
ABSTAIN_CRITERION = "tier_confidence"
#: Default operating-point targets: abstain on at most this share of traffic, no downgrade target.
MAX_ABSTAIN = 0.10
MAX_DOWNGRADE = None
#: Multipliers of the downgrade costs the operating-point fit tries.
DOWNGRADE_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
#: Stratified folds of the baselines and the logistic-regression head.
N_SPLITS = 10
#: Inverse regularisation of the logistic-regression head (on standardised features).
LOGREG_C = 1.0
#: Example prices per million tokens, and a user's traffic mix per true tier.
PRICES = {"cheap": 0.15, "medium": 1.0, "strong": 10.0}
TRAFFIC_MIX = {"cheap": 0.85, "medium": 0.06, "strong": 0.09}
TOKENS_PER_MESSAGE = 1000
#: One LLM-categorizer call, priced at the cheapest tier.
CATEGORIZER_TOKENS = 400
#: Pool-size curve: messages per category; robustness: messages perturbed.
POOL_SIZES = (5, 10, 20, 40, 80, 160)
ROBUSTNESS_N = 280

# -- generalisation -------------------------------------------------------------------------------

#: Prompts scored per source (file) of an evaluation folder, sampled with SEED.
EVAL_PER_SOURCE = 150
#: Points of tier accuracy between leave-one-out and out-of-distribution that the index flags.
OOD_GAP_FLAG = 0.05
#: Router head exported by default: "auto" picks the candidate with the best out-of-fold tier accuracy.
HEAD = "auto"
HEAD_CANDIDATES = ("knn", "logreg", "blend", "mlp")
#: Weight of the logistic-regression (blend) or networks' (mlp) probabilities in a blended head (the vote gets the rest).
BLEND_WEIGHT = 0.5
#: The mlp head: a bag of MLP_BAGS one-hidden-layer networks of MLP_HIDDEN ReLU units, L2 penalty MLP_ALPHA.
#: Chosen on the development messages (data/dev, 841): 128 units, alpha 1 and four seeds route 95.1% against
#: 93.3% for the blend's logistic regression, and 128-512 units with alpha 0.3-3 all land within a point of it.
MLP_HIDDEN = 128
MLP_ALPHA = 1.0
MLP_BAGS = 4
MLP_MAX_ITER = 300
#: Confidence calibration fitted on out-of-fold scores: "auto" keeps the method with the lowest ECE.
CALIBRATION = "auto"
CALIBRATION_METHODS = ("none", "temperature", "isotonic")
CALIBRATION_BINS = 10
#: Confidence against coverage (``core.coverage``): a message less covered than this share of the pool's own
#: messages (by nearest-neighbour similarity) gets its confidence scaled down, to 0 below every pool message.
#: At 0.05 the uncovered probes of ``analysis.coverage`` fall from 0.95 to about 0.7 mean confidence (data/dev
#: messages 0.88 -> 0.85). The cap does not decide abstaining: out of sample the pool's least covered tenth is
#: routed right 88% of the time against 93%, but on data/dev capped messages were right as often as the others
#: (92% vs 93%), and abstaining on them took a third more of data/dev to the categorizer (issue 20).
COVERAGE_LEVEL = 0.05
#: Long pasted messages (``core.question``): from this many characters, the closing request is embedded on its
#: own too and its vote gets this share of the blend. Chosen on the pool's leave-one-out of its long messages
#: (84% -> 88-89% for weights 0.3-0.6) and data/dev/pasted.jsonl (70% -> 92.5% at 0.6; issue 20).
QUESTION_WEIGHT = 0.6
QUESTION_MIN_CHARS = 400

# -- conversations --------------------------------------------------------------------------------

#: The context rule: how a turn is routed in a conversation (see workbench.core.conversation): "alone", "previous"
#: (with the earlier user turns), "confident" (the most confident reading), "lift" (the same, but context may only
#: raise a turn's tier), "sticky", "inherit" (lift, then short turns continue the task) or "detector" (a turn the
#: pool's learned follow-up detector flags continues the task of the turns before; others are routed alone). Chosen
#: on 5 held-out folds of data/dev's conversations (949 conversations, 4,336 turns; each fold's detector fitted on
#: the other folds and data/conversations) with the default export (the mlp head, the detector's networks):
#: "detector" reading three earlier turns routes 88.9% of all turns right, follow-ups 84.7% with 8.4% downgrades
#: (two turns 88.0%, 82.5% with 10.9%; lift-1 80.3%, alone 71.9%). Reported on data/conversations (08_generalisation,
#: 332 conversations, 1,302 turns, the folds chosen by conversation): 94.5% of all turns, follow-ups 94.3% with 3.1%
#: downgrades, fresh turns 94.7% with 2.2% (two turns 94.5%, 94.3% with 3.2%, 94.7% with 2.0%; alone 96.9% with 1.9%).
#: With the 360 development conversations written since (conversations_l to _o) in every fold's detector: data/dev's
#: 949 earlier conversations 89.4% (85.2% with 7.8%, fresh 92.2% with 2.4%) against 88.9%; data/conversations 94.2%,
#: follow-ups 93.5% with 3.7%, fresh turns 94.9% with 2.0%.
CONTEXT_RULE = "detector"
#: The name before "context rule" (kept for one release).
CONVERSATION_POLICY = CONTEXT_RULE
#: Earlier user turns read with a message (and the sticky window). With the pool's detector only a follow-up is read
#: with them, and only when that could raise it (one more text to embed, longer by the earlier turns): three cost
#: what two do per turn (benchmarks/conversation_latency.py); see CONTEXT_RULE.
CONTEXT_TURNS = 3
#: "inherit": a turn of at most this many words (two CJK characters a word) continues the previous turn's task.
INHERIT_SHORT_WORDS = 6
#: "detector": intercept and weights of the follow-up detector over workbench.core.conversation.FOLLOW_UP_FEATURES,
#: fitted on data/conversations (workbench.analysis.conversations.fit_follow_up_detector), and its threshold.
#: Fitted with one earlier turn on the 1,302 turns above (held out, it tells follow-ups from fresh turns at AUC 0.89).
#: Pools exported since have their own detector (workbench.core.follow_up) and use these only when they lack one.
FOLLOW_UP_WEIGHTS = (7.0720, -1.9914, -1.7497, -3.1775, 1.2254, 1.9407, -0.2729, -2.3376)
FOLLOW_UP_HAND_THRESHOLD = 0.6
#: Follow-up probability of the pool's detector from which the "detector" rule continues the task. Chosen on 5 folds
#: of all of data/dev's conversations (1,309 conversations, 6,087 turns; each fold's detector fitted on the other folds
#: and data/conversations) by workbench.analysis.conversations.choose_threshold over FOLLOW_UP_THRESHOLDS, which
#: 08_generalisation replays every night: the best tier accuracy over all turns, ties within FOLLOW_UP_THRESHOLD_TIE
#: broken by the expected cost under the taxonomy's cost matrix (a downgrade costs more than an upgrade). With the
#: 5,346-message pool, each fold's detector fitted as an export fits it (on the pool's messages as the backend embeds
#: them; until issue 20's last round the folds read the artifact's vectors, centred on the pool's own mean, and chose
#: 0.525), 0.45, 0.475, 0.5, 0.525, 0.55, 0.575 route 89.2%, 89.5%, 89.5%, 89.5%, 89.5%, 89.4% of turns right at a
#: mean cost of 0.262, 0.265, 0.276, 0.289, 0.308, 0.327 (follow-ups downgraded 5.1%, 5.6%, 6.3%, 7.5%, 8.5%, 9.8%),
#: so 0.475 replaces 0.525. The curve is flat from 0.475 to 0.55, so the choice is close to noise. Lower thresholds
#: trade fresh turns read as follow-ups (mostly upgrades) for follow-ups missed (mostly downgrades). With the
#: regression before the networks, k of 10 or 25 and C of 3 or 30 moved nothing by more than half a point. A stricter
#: threshold only where the task would lower the turn's own tier (0.6-0.9) routed the development conversations
#: worse (87.8-87.0%).
FOLLOW_UP_THRESHOLD = 0.475
#: Thresholds at which 08_generalisation replays the "detector" rule from held-out follow-up probabilities
#: (workbench.analysis.conversations.threshold_curve): 0.3 to 0.7 in steps of 0.025.
FOLLOW_UP_THRESHOLDS = tuple(round(0.3 + 0.025 * i, 3) for i in range(17))
#: Thresholds whose tier accuracy over all turns lies within this of the best one tie; the lowest expected cost
#: among them is chosen (choose_threshold, the rule FOLLOW_UP_THRESHOLD was chosen by).
FOLLOW_UP_THRESHOLD_TIE = 0.002
#: Neighbours of the pool's detector's k-NN votes over the labelled turns it keeps (workbench.core.follow_up).
FOLLOW_UP_K = 15
#: Most labelled turns a pool.npz may keep for those votes (int8: 896 bytes each at 896 dimensions).
FOLLOW_UP_MAX_TURNS = 20_000
#: The memory is kept in its this many leading principal directions (int8, 256 bytes a turn instead of 896; the
#: projection adds 256 x 896 float32). Held out on both conversation sets with 5,638 remembered turns: 256 routes
#: 88.1% of data/dev's conversation turns and 93.5% of data/conversations' (the full space 88.1% and 93.4%; 384:
#: 88.1%, 93.5%; 128: 87.8%, 93.8%), and pool.npz shrinks from 8.9 to 6.4 MB. None keeps the full space.
FOLLOW_UP_MEMORY_DIMS = 256
#: What reads a turn and the previous turn in the pool's follow-up detector, beside its two k-NN votes: "mlp", a bag
#: of networks of the mlp head's sizes (MLP_*), or "regression", a logistic regression (FOLLOW_UP_C), over the same
#: 2 * dim + 2 inputs. Chosen on 5 folds of data/dev's conversations (4,336 turns) with the default export: the
#: networks route 88.9% of turns right (follow-ups 84.7% with 8.4% downgrades, fresh turns 91.6% with 2.3%) against
#: the regression's 88.4% (84.4% with 8.9%, 91.0% with 2.4%), at FOLLOW_UP_THRESHOLD either way; held out, they tell
#: follow-ups at AUC 0.966 against 0.948 (the detector's three readings together: 0.972 against 0.965). Replayed on
#: the same folds (89.0% for these networks there): one network instead of four 88.9%; the product of the two turns'
#: vectors as more inputs 88.5%; the inputs in the memory's principal directions 88.0%; the networks beside the
#: regression instead of in its place 88.7%. They cost the export 33 s against the regression's 2 s. Fitted full-batch
#: (lbfgs, so that the fit would move smoothly with its rows) instead of adam: 88.8% against 89.5% (5,346-message
#: pool, threshold 0.475, the folds' detectors fitted as an export fits them).
FOLLOW_UP_READER = "mlp"
#: Inverse regularisation of the follow-up detector's regression (FOLLOW_UP_READER "regression"). Chosen
#: early, on held-out folds of data/conversations before data/dev's conversations grew (detection accuracy 90.3% at
#: 10; 3 and 30 within half a point, 1 at 86.5%): the report set served here as a development set once.
FOLLOW_UP_C = 10.0
#: Texts whose vectors a router remembers for conversations (each turn re-sends the earlier ones): 896 float32 each.
CONTEXT_MEMORY = 4096
#: Folds of the labelled conversations (split by conversation) that context rules are compared on.
CONTEXT_FOLDS = 5
#: A turn routed to this category with at least this confidence is a fresh casual one: it never inherits a task.
STICKY_RELEASE_CATEGORY = "casual"
STICKY_RELEASE_CONFIDENCE = 0.9

# -- the router service (workbench serve) -------------------------------------------------------------

SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8080
#: Micro-batching: messages per encoder call, and how long a batch waits for more while traffic is concurrent.
SERVE_MAX_BATCH = 32
SERVE_BATCH_WINDOW_MS = 5.0
#: Request limits (a request past one gets a 413).
SERVE_MAX_MESSAGES = 256
SERVE_MAX_TEXT_CHARS = 16_000
SERVE_MAX_BODY_BYTES = 1 << 20
#: Characters per request, all texts together: 256 texts of 16,000 characters would hold the encoder for seconds.
SERVE_MAX_REQUEST_CHARS = 64_000
#: Transport limits (uvicorn): open connections and tasks past which it answers 503, the largest request
#: head it buffers (bytes), and how long an idle keep-alive connection stays open (seconds).
SERVE_MAX_CONNECTIONS = 256
SERVE_MAX_HEADER_BYTES = 16 * 1024
SERVE_KEEP_ALIVE_S = 5
#: Seconds between two looks at the pool file (an atomic replacement is loaded in the background).
SERVE_RELOAD_POLL_S = 0.5
#: Seconds in-flight requests get to finish after SIGTERM.
SERVE_GRACEFUL_S = 30

# -- the gateway (workbench serve --upstreams) ------------------------------------------------------

#: The model name that asks the gateway to route (any other name passes through to the upstream serving it).
GATEWAY_ALIAS = "auto"
#: Per upstream, unless its entry says otherwise: seconds to the first byte and between two reads, and retries
#: of a connection error, a 429 or a 5xx before the request goes down the fallback chain.
GATEWAY_TIMEOUT_S = 60.0
GATEWAY_RETRIES = 1
#: Longest upstream answer the gateway reads or relays (a streamed answer past it ends with an error event).
GATEWAY_MAX_RESPONSE_BYTES = 8 << 20
#: Largest chat-completions request body the gateway reads (long conversations; 413 past it).
GATEWAY_MAX_BODY_BYTES = 8 << 20
#: Request ids the gateway keeps in memory for ``POST /v1/feedback`` (a bounded recent set: about 100 bytes each);
#: an id older than that, or served by another worker process, is looked up in the decision log instead.
FEEDBACK_RECENT_IDS = 100_000
#: Days of decision-log files searched for an id the recent set does not hold (today's and yesterday's: feedback
#: comes within a conversation, and scanning months of logs per request would not be bounded).
FEEDBACK_MAX_AGE_DAYS = 2
#: Largest feedback body read (a request id, a rating and a tier fit in a few hundred bytes).
FEEDBACK_MAX_BODY_BYTES = 4096

# -- traffic --------------------------------------------------------------------------------------

#: Longest chat-completions response body the label client reads (a label answer is a few hundred bytes).
LABEL_MAX_RESPONSE_BYTES = 2**20
IMPORT_MIN_CHARS = 2
#: ``workbench queue``: a decision whose winning share beats the runner-up's by less than this is "low margin" (a
#: fifth of the vote: the pool's neighbours nearly split).
QUEUE_LOW_MARGIN = 0.2
#: ``workbench queue``: distinct logged texts embedded for the coverage signal (a seeded sample past it), so the
#: queue's cost stays bounded on months of logs.
QUEUE_SCAN = 5000
IMPORT_MAX_CHARS = 4000
#: Static tier the live system fell back to when the label source was down.
OUTAGE_TIER = "medium"

# -- reports and figures ----------------------------------------------------------------------------

#: Report folders the nightly keeps (the one ``reports/latest`` points to is never deleted).
REPORTS_KEEP = 30
#: Distinct colours of a legend at most; rarer values share one grey "other" entry.
MAX_COLORS = 12
#: Nearest neighbours a map carries per point (hover and the neighbour panel).
MAP_NEIGHBORS = 5
#: Maps with at least this many points are drawn with WebGL (scattergl) instead of SVG.
WEBGL_MIN_POINTS = 5000
#: The file the map explorers write a selection to, for the review queue and ``workbench label --input``.
REVIEW_FILE = INTERIM_DIR / "review" / "selection.jsonl"
#: The file the explorers append label edits to (id, old label, new label, who, when, note); ``workbench merge
#: --edits`` applies it to a copy of the pool.
EDITS_FILE = INTERIM_DIR / "review" / "label-edits.jsonl"
#: A value of a map colouring with at least this many points gets its own colour (not "other"), as far as the
#: palette reaches: every language the slice flag looks at is told apart on the map.
COLOR_MIN_COUNT = 30
#: The index flags a slice (a language, a source) of at least this many messages whose leave-one-out tier
#: accuracy is more than SLICE_MAX_GAP under the pool's.
SLICE_MIN_COUNT = 30
SLICE_MAX_GAP = 0.10
#: Words per cluster label on a map (class-based TF-IDF over clusters of the 2-D map, analysis/keywords.py).
CLUSTER_KEYWORDS = 3

# -- traffic ------------------------------------------------------------------------------------

#: The traffic section's drift flag: the latest day's share of a tier moves by more than this against the days before
#: it (issue 19: 5 points), or its uncovered share at least doubles ...
DRIFT_POINTS = 0.05
#: ... against this many previous days (pooled).
DRIFT_WINDOW_DAYS = 7
