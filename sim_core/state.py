"""The simulator's state: NumPy columns with documented integer codes.

Per-request columns live in three 2-D arrays whose *rows* are columns (``arr[COL]`` is a
contiguous 1-D view over all requests):

* ``rv`` (int64) — fields a router may see (prompt, processed tokens, state, replica, ...).
* ``rh`` (int64) — hidden fields: the decode length.
* ``rf`` (float64) — times and time accumulators, in seconds.

Per-replica columns live in ``pi`` (int64) and ``pf`` (float64) the same way, and the
decode fast-forward's ints in ``ph``.  Scalars live in ``si``/``sf``.

The progress of a *running* request (tokens processed, KV blocks held, tokens generated)
is kept in ``ru``, beside its id in the replica's running set (``slots[SL_RUN]``): the
engine's per-iteration loops then read one replica's requests from consecutive memory.
(Read out of ``rv`` by request id, scattered over the ids of every replica's requests, they
no longer fit the first-level cache on 64 replicas: the README's "Speed" has the counts.)
``rv``'s and ``rh``'s copies are written when a request leaves the running set and before
the engine returns to Python (:func:`sim_core.queues.store_running`), except after an
invalid routing decision, which ends the simulation.  What is derived from
decode lengths (``rh``; ``ru``'s total lengths; ``ph`` and ``pf``'s stretch columns, since a
stretch ends at its batch's first completion) is never in an array a policy may read: the
read-only view handed to routers is built from ``rv``/``rf``/``pi`` and the queues, and a
sandboxed policy maps only those (its harness shares ``rv``, ``rf``, ``pi``, ``slots``,
``qbuf``, ``si``, ``sf``; never ``rh``, ``ph``, ``pf`` or ``ru``).  Everything is allocated
once by :func:`allocate`; the compiled engine (:mod:`sim_core.engine`) mutates it in place.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Request states (rv[V_STATE]).
ST_FUTURE = 0      # not yet arrived
ST_GLOBAL = 1      # in the global queue, not routed
ST_WAITING = 2     # in a replica's waiting queue, no KV memory held
ST_RUNNING = 3     # admitted: holds KV blocks (prefill or decode phase)
ST_DONE = 4
ST_MARK = 5        # transient mark used while validating routing decisions

# Visible request columns (rv).
V_PROMPT = 0       # prompt tokens of the current attempt (grows on a decode-phase restart)
V_PROCESSED = 1    # tokens processed in the current attempt
V_STATE = 2
V_REPLICA = 3      # -1 until routed
V_RESTARTS = 4
V_BLOCKS = 5       # KV blocks held
V_PROMPT0 = 6      # prompt tokens at arrival
V_RECOMPUTED = 7   # tokens whose KV was thrown away by pre-emptions
V_NEXT = 8         # waiting-queue links (-1 = none)
V_PREV = 9
NV = 10

# Hidden request columns (rh).
H_TOTAL = 0        # prompt0 + decode0; constant
H_DECODE0 = 1      # decode tokens at arrival
H_GENERATED = 2    # decode tokens generated and kept (== decode0 at completion)
NH = 3

# Request times (rf).
F_ARRIVAL = 0
F_ROUTED = 1           # first routing to a replica
F_FIRST_SCHED = 2      # first admission into a batch
F_FIRST_TOKEN = 3      # first prefill completion (first attempt's time is kept)
F_COMPLETED = 4
F_ENTER = 5            # when the current state was entered
F_REPLICA_QUEUE = 6    # accumulated time waiting on a replica
F_LOST = 7             # accumulated running time of attempts that were pre-empted
F_ATTEMPT_START = 8    # admission time of the current attempt
F_ATTEMPT_PREFILL = 9  # prefill completion time of the current attempt
F_QKEY = 10            # waiting-queue priority key (policy hook; smaller = earlier)
NF = 11

# Replica int columns (pi).
P_NUM_BLOCKS = 0
P_ALLOC = 1            # allocated blocks
P_WAITING = 2
P_RUNNING = 3
P_WQ_HEAD = 4
P_WQ_TAIL = 5
P_BUSY = 6             # 1 while a batch is in flight
P_BATCH_LEN = 7
P_WAIT_PROMPT = 8      # sum of prompt tokens over the waiting queue
P_DIRTY = 9            # 1 if queued for batch formation
P_ITERATIONS = 10
P_PREEMPTIONS = 11
P_STATE = 12           # replica lifecycle: R_STOPPED / R_STARTING / R_ACTIVE / R_DRAINING
P_GEN_TOKENS = 13      # decode tokens generated so far (autoscalers read the rate)
NPI = 14

# Hidden replica ints (ph): decode fast-forward (sim_core.fastforward).  A replica in a
# *stretch* runs decode-only iterations whose per-request bookkeeping is deferred until
# someone may look.  A stretch's length is cut at the batch's first completion, so these
# columns carry decode lengths: like rh, they are never shared with a policy.
PH_FF_LEFT = 0         # stretch iterations still to start after the one in flight
PH_FF_DONE = 1         # stretch iterations finished but not yet applied to the requests
PH_FF_KV = 2           # decode KV sum of the iteration in flight (stretch only)
PH_FF_SEG = 3          # decode-attention segment index of the stretch (latency.decode_segment)
PH_UNSTORED = 4        # 1: the replica's running columns (ru) changed since rv/rh last got them
NPH = 5

# Hidden running columns (ru, shape (NRU, R, cap + 1)), aligned with the running set
# slots[SL_RUN] (entry j of replica r: request slots[SL_RUN, r, j]).  They hold the total
# length, so like rh they are never shared with a policy.
RU_PROCESSED = 0       # rv[V_PROCESSED] of a running request (rv's copy may be stale)
RU_BLOCKS = 1          # rv[V_BLOCKS] (likewise); -1: the entry has left (until compaction)
RU_PROMPT = 2          # rv[V_PROMPT] (constant while running)
RU_TOTAL = 3           # rh[H_TOTAL]
RU_GENERATED = 4       # rh[H_GENERATED] (rh's copy may be stale)
NRU = 5

# Replica lifecycle states (pi[P_STATE]); only active replicas accept requests.
R_STOPPED = 0
R_STARTING = 1
R_ACTIVE = 2
R_DRAINING = 3

# Replica float columns (pf).
PF_BUSY_UNTIL = 0
PF_BUSY_TIME = 1       # accumulated time with a batch in flight
PF_READY_AT = 2        # when a starting replica becomes active (inf otherwise)
PF_UP_SINCE = 3        # when the replica was last started (GPU time counts from here)
PF_UP_TIME = 4         # accumulated GPU time of finished up-periods
PF_START_TIME = 5      # accumulated time spent starting (cold starts, finished or cancelled)
PF_DRAIN_SINCE = 6     # when the replica began draining (only meaningful while draining)
PF_DRAIN_TIME = 7      # accumulated time spent draining (finished drains)
PF_FF_FIXED = 8        # stretch: the latency part fixed by the batch size (latency.fixed_ms)
PF_FF_TX = 9           # stretch: decode-attention segment fraction (latency.decode_segment)
PF_FF_END = 10         # stretch: when its last iteration ends (the replica's queued end)
PF_FF_BUSY = 11        # stretch: PF_BUSY_TIME once its last iteration has ended
NPF = 12

# Int scalars (si).
S_NUM_REQ = 0
S_NEXT_ARRIVAL = 1     # index of the next request to arrive
S_NUM_GENERATED = 2    # requests whose arrival time is known (all, for open loop)
S_GQ_LEN = 3
S_NUM_DONE = 4
S_N_EVENT_DONE = 5     # completions in the last event
S_EVENT_REPLICA = 6
S_TL_LEN = 7           # timeline rows written
S_TL_CAP = 8
S_EVENT_BOUND = 9      # the last global event came after the iteration ends before
                       # (SF_NOW, this replica id): the replica count unless a completion
S_DIRTY_LEN = 10
S_QUEUE_POLICY = 11    # 0 = arrival (FIFO), 1 = by F_QKEY ascending
S_SCHEDULER = 12       # 0 = sarathi, 1 = vllm
S_BLOCK_SIZE = 13
S_WATERMARK = 14
S_CHUNK = 15
S_BATCH_CAP = 16
S_ERROR = 17           # index of the offending decision when validation fails
S_CLOSED_LOOP = 18     # 1 if arrivals are generated by completions
S_GENERATED_TOKENS = 19
S_NUM_ACCEPTING = 20   # active replicas
S_FAST_FORWARD = 21    # 1: decode stretches are fast-forwarded (0: step by step)
S_SKIP_EMPTY = 22      # 1: the router is not called when the global queue is empty
S_TWIN = 23            # compiled twin of the router (sim_core.twins codes; 0 = Python router)
S_TWIN_CALLS = 24      # routing decisions made by the compiled twin
S_RR_NEXT = 25         # round-robin twin: the next replica in turn
S_HRA_SHORTEST = 26    # HRA twin: 1 = shortest prompt first
S_TWIN_KEY = 27        # compiled waiting-queue key of a built-in batch policy (sim_core.twins)
S_BLOCK_SHIFT = 28     # log2(block size) if it is a power of two, else -1 (queues.blocks_for)
NSI = 29

# Float scalars (sf).
SF_NOW = 0
SF_THINK = 1
SF_ARRIVAL_LIMIT = 2   # closed loop: no arrival after this time
SF_NEXT_TICK = 3       # next autoscaler tick (inf without an autoscaler)
SF_NEXT_READY = 4      # earliest time a starting replica becomes active (inf if none)
SF_HRA_GROWTH = 5      # HRA twin: 1 + decode_growth
SF_HRA_SAFETY = 6      # HRA twin: safety_fraction
SF_KEY_SECONDS_PER_TOKEN = 7  # aged_spf key twin: seconds_per_token
NSF = 8

# Timeline columns (tl).
TL_TIME = 0
TL_REPLICA = 1
TL_WAITING = 2
TL_RUNNING = 3
TL_ALLOC = 4
TL_NUM_BLOCKS = 5
TL_STATE = 6
NTL = 7

# Rows of the bundled int arrays: slots (3, R, cap + 1) and qbuf (6, max(N, R, block size + 1)).
SL_RUN = 0         # running request ids per replica, sorted by (arrival, id)
SL_BATCH = 1       # the batch in flight: each entry's index in the running set (SL_RUN)
SL_TOK = 2         # tokens each batch entry processes
Q_GQ = 0           # the global queue (arrival order)
Q_DONE = 1         # requests completed by the last event
Q_DEC_REQ = 2      # routing decisions: request ids ...
Q_DEC_REP = 3      # ... and replicas
Q_DIRTY = 4        # replicas that must try to form a batch
Q_COUNTS = 5       # scratch of sim_core.fastforward.stretch_length; all zero between its calls

# Event codes returned by the engine.
EV_END = 0
EV_ARRIVAL = 1
EV_COMPLETION = 2
EV_TICK = 3            # an autoscaler tick is due
EV_READY = 4           # a starting replica became active
ERR_BAD_REPLICA = -1
ERR_NOT_QUEUED = -2
ERR_DUPLICATE = -3
ERR_NOT_ACCEPTING = -4

QUEUE_FIFO = 0
QUEUE_BY_KEY = 1
SCHED_CODES = {"sarathi": 0, "vllm": 1}


@dataclass
class SimState:
    """All arrays of one simulation (see the module docstring for their layout)."""

    rv: np.ndarray
    rh: np.ndarray
    rf: np.ndarray
    pi: np.ndarray
    pf: np.ndarray
    ph: np.ndarray
    ru: np.ndarray
    slots: np.ndarray
    qbuf: np.ndarray
    ev_t: np.ndarray
    ev_w: np.ndarray
    si: np.ndarray
    sf: np.ndarray
    tl: np.ndarray

    @property
    def run_ids(self) -> np.ndarray:
        return self.slots[SL_RUN]

    @property
    def gq(self) -> np.ndarray:
        return self.qbuf[Q_GQ]

    @property
    def done_buf(self) -> np.ndarray:
        return self.qbuf[Q_DONE]

    @property
    def dec_req(self) -> np.ndarray:
        return self.qbuf[Q_DEC_REQ]

    @property
    def dec_rep(self) -> np.ndarray:
        return self.qbuf[Q_DEC_REP]

    def engine_args(self) -> tuple:
        """The arrays in the order :func:`sim_core.engine.advance` takes them."""
        return (self.rv, self.rh, self.rf, self.pi, self.pf, self.ph, self.ru, self.slots,
                self.qbuf,
                self.ev_t, self.ev_w, self.si, self.sf, self.tl)


def allocate(*, arrived_at, prompt, decode, num_replicas: int, num_blocks: int, block_size: int,
             watermark: int, chunk: int, batch_cap: int, scheduler: str, closed_loop_users: int,
             think_time_s: float, arrival_limit_s: float, record_timeline: bool,
             queue_policy: int = QUEUE_FIFO, fast_forward: bool = True) -> SimState:
    """Allocate and initialise the state for a trace on a homogeneous cluster
    (``fast_forward=False`` runs every iteration step by step)."""
    n = len(prompt)
    R = num_replicas
    rv = np.zeros((NV, n), np.int64)
    rv[V_PROMPT] = prompt
    rv[V_PROMPT0] = prompt
    rv[V_REPLICA] = -1
    rv[V_NEXT] = -1
    rv[V_PREV] = -1
    rh = np.zeros((NH, n), np.int64)
    rh[H_TOTAL] = prompt + decode
    rh[H_DECODE0] = decode
    rf = np.full((NF, n), np.nan)
    rf[F_ARRIVAL] = arrived_at
    rf[F_REPLICA_QUEUE] = 0.0
    rf[F_LOST] = 0.0
    rf[F_QKEY] = 0.0
    pi = np.zeros((NPI, R), np.int64)
    pi[P_NUM_BLOCKS] = num_blocks
    pi[P_WQ_HEAD] = -1
    pi[P_WQ_TAIL] = -1
    pi[P_STATE] = R_ACTIVE
    pf = np.zeros((NPF, R), np.float64)
    pf[PF_BUSY_UNTIL] = np.inf
    pf[PF_READY_AT] = np.inf
    si = np.zeros(NSI, np.int64)
    si[S_NUM_REQ] = n
    if closed_loop_users > 0:
        si[S_CLOSED_LOOP] = 1
        si[S_NUM_GENERATED] = min(n, closed_loop_users)
    else:
        si[S_NUM_GENERATED] = n
    si[S_QUEUE_POLICY] = queue_policy
    si[S_SCHEDULER] = SCHED_CODES[scheduler]
    si[S_BLOCK_SIZE] = block_size
    bs = int(block_size)
    si[S_BLOCK_SHIFT] = bs.bit_length() - 1 if bs > 0 and bs & (bs - 1) == 0 else -1
    si[S_WATERMARK] = watermark
    si[S_CHUNK] = chunk
    si[S_NUM_ACCEPTING] = R
    si[S_BATCH_CAP] = batch_cap
    si[S_FAST_FORWARD] = int(bool(fast_forward))
    sf = np.zeros(NSF, np.float64)
    sf[SF_THINK] = think_time_s
    sf[SF_ARRIVAL_LIMIT] = arrival_limit_s
    sf[SF_NEXT_TICK] = np.inf
    sf[SF_NEXT_READY] = np.inf
    # One timeline row per replica at every global event (at most one arrival and one
    # completion event per request).
    rows = (2 * n + 2) * R if record_timeline else 0
    tl = np.zeros((NTL, rows), np.float64)
    si[S_TL_CAP] = rows
    cap = batch_cap
    slots = np.full((3, R, cap + 1), -1, np.int64)
    # The tournament tree of iteration ends (sim_core.queues.ev_set), empty: every match
    # between two missing ends goes to the lower id, on the left.
    leaves = 1 << max(R - 1, 0).bit_length()
    ev_t = np.full(2 * leaves, np.inf)
    ev_w = np.zeros(2 * leaves, np.int64)
    ev_w[leaves:] = np.arange(leaves)
    for i in range(leaves - 1, 0, -1):
        ev_w[i] = ev_w[2 * i]
    slots[SL_TOK] = 0
    return SimState(
        rv=rv, rh=rh, rf=rf, pi=pi, pf=pf, ph=np.zeros((NPH, R), np.int64),
        ru=np.zeros((NRU, R, cap + 1), np.int64), slots=slots,
        qbuf=np.zeros((6, max(n, R, bs + 1, 1)), np.int64),
        ev_t=ev_t, ev_w=ev_w,
        si=si, sf=sf, tl=tl,
    )
