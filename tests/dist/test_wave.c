/* The messages of spread lookup batches (src/dist/wave.c), without MPI: a circuit with plain and
 * multi-value lookups over three stages runs once here, then again with every batch cut into three
 * shares, two of them encoded, decoded and run on a second copy of the evaluation keys read back
 * from their compressed bytes (what a worker rank holds): the output ciphertexts must be the same
 * bit for bit. Then the splitter, and broken messages refused without a crash. */
#include "../check.h"
#include "dist_impl.h"
#include "veil/graph.h"
#include "veil/runtime.h"

typedef struct {
    const veil_eval_keys *copy; /* the worker's */
    int batches, mv_jobs, jobs, remote_jobs;
    dist_buf last; /* the last share encoded, for the malformed-input checks */
    veil_status st;
} spread_ctx;

static veil_status spread_three(void *vctx, const veil_spread_batch *b)
{
    spread_ctx *x = vctx;
    const double w[3] = {1, 2, 0.5};
    size_t first[4];
    dist_split(b->njobs, 3, w, first);
    x->batches++;
    x->jobs += (int)b->njobs;
    for (size_t j = 0; j < b->njobs; j++) x->mv_jobs += b->jobs[j].factor != NULL;
    veil_status st = veil_ks_pbs_jobs(veil_eval_keys_part(b->ek, b->part), b->jobs, first[1], b->threads);
    for (int r = 1; r < 3 && st == VEIL_OK; r++) {
        if (first[r + 1] == first[r]) continue;
        dist_buf msg = {0};
        uint64_t id = 0, *outs = NULL;
        size_t nw = 0;
        st = dist_batch_encode(b, veil_eval_keys_id(b->ek), first[r], first[r + 1], &msg);
        if (st == VEIL_OK) st = dist_batch_key_id(msg.p, msg.len, &id);
        if (st == VEIL_OK && id != veil_eval_keys_id(b->ek)) st = VEIL_ERR_MALFORMED;
        if (st == VEIL_OK) st = dist_batch_run(msg.p, msg.len, x->copy, 1, &outs, &nw);
        if (st == VEIL_OK && nw != dist_out_words(b, first[r], first[r + 1])) st = VEIL_ERR_MALFORMED;
        if (st == VEIL_OK) dist_outputs_apply(b, first[r], first[r + 1], outs);
        x->remote_jobs += (int)(first[r + 1] - first[r]);
        veil_free(outs);
        dist_buf_free(&x->last);
        x->last = msg;
    }
    if (st != VEIL_OK) x->st = st;
    return st;
}

static void check_split(void)
{
    size_t f[5];
    const double w1[4] = {1, 1, 1, 1};
    dist_split(10, 4, w1, f);
    CHECK(f[0] == 0 && f[4] == 10, "the shares cover [0, 10)");
    for (int r = 0; r < 4; r++) CHECK(f[r + 1] - f[r] >= 2 && f[r + 1] - f[r] <= 3, "equal weights: 2 or 3 each");
    const double w2[4] = {3, 0, 1, 0};
    dist_split(8, 4, w2, f);
    CHECK(f[1] - f[0] == 6 && f[2] == f[1] && f[3] - f[2] == 2 && f[4] == f[3], "weights 3:0:1:0 cut 8 into 6, 0, 2, 0");
    const double w3[3] = {0, 0, 0};
    dist_split(5, 3, w3, f);
    CHECK(f[1] == 5 && f[3] == 5, "no weight at all: everything to rank 0");
    const double w4[3] = {1, 1, 0};
    dist_split(1, 3, w4, f);
    CHECK(f[3] == 1 && (f[1] - f[0]) + (f[2] - f[1]) == 1 && f[3] == f[2], "one job, the last rank left out");
    const double w5[2] = {1, 1000};
    dist_split(3, 2, w5, f);
    CHECK(f[1] == 0 && f[2] == 3, "a much faster rank takes all three");
}

int main(void)
{
    check_split();
    /* x: eight 4-bit values; a = [x >= 5], b = [x >= 11] (one blind rotation: multi-value),
     * c = x*x mod 13, then t = (a + b + c) through a second table, and 2t + 1 through a third;
     * outputs 2t + 1, a and b */
    veil_graph *g = NULL;
    CHECK_OK(veil_graph_new(&g));
    const int64_t shape[1] = {8};
    int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, shape);
    int64_t ge5[16], ge11[16], sq[16], t2[16], t3[32];
    for (int i = 0; i < 16; i++) ge5[i] = i >= 5, ge11[i] = i >= 11, sq[i] = i * i % 13, t2[i] = (i * 7 + 3) % 16;
    int a = veil_graph_table(g, x, 16, ge5);
    int b = veil_graph_table(g, x, 16, ge11);
    for (int i = 0; i < 32; i++) t3[i] = (31 - i) / 2;
    int c = veil_graph_table(g, x, 16, sq);
    int s = veil_graph_add(g, veil_graph_add(g, a, b), c);
    int t = veil_graph_table(g, veil_graph_clip(g, s, 0, 15), 16, t2);
    int u = veil_graph_table(g, veil_graph_add(g, veil_graph_add(g, t, t), veil_graph_scalar(g, 1)), 32, t3);
    CHECK_OK(veil_graph_output(g, u));
    CHECK_OK(veil_graph_output(g, a));
    CHECK_OK(veil_graph_output(g, b));
    int64_t samples[16][8];
    const int64_t *set[16];
    for (int i = 0; i < 16; i++) {
        for (int e = 0; e < 8; e++) samples[i][e] = (i + 3 * e) % 16;
        set[i] = samples[i];
    }
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    veil_circuit *circ = NULL;
    CHECK_OK(veil_compile(g, set, 16, &cfg, &circ));
    veil_graph_free(g);
    veil_rng *rng = NULL;
    check_seeded_rng(&rng);
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL, *copy = NULL;
    CHECK_OK(veil_circuit_keygen(circ, rng, &sk, &ek));
    uint8_t *ekb = NULL;
    size_t ekl = 0;
    CHECK_OK(veil_eval_keys_serialize(ek, 1, &ekb, &ekl));
    CHECK_OK(veil_eval_keys_deserialize(ekb, ekl, NULL, &copy));
    veil_free(ekb);
    CHECK(veil_eval_keys_id(ek) != veil_eval_keys_id(copy) && veil_eval_keys_id(copy) != 0,
          "every key set has its own id");
    const int64_t in0[8] = {0, 4, 5, 9, 10, 11, 14, 15};
    const int64_t *ins[1] = {in0};
    veil_ciphertexts *ct = NULL, *ref = NULL, *got = NULL;
    CHECK_OK(veil_circuit_encrypt(circ, sk, ins, rng, &ct));
    CHECK_OK(veil_circuit_run(circ, ek, ct, 1, &ref));
    spread_ctx sx = {copy, 0, 0, 0, 0, {0}, VEIL_OK};
    CHECK(!veil_runtime_spread_active(), "no spreading by default");
    veil_runtime_set_spread(spread_three, &sx);
    CHECK(veil_runtime_spread_active(), "spreading once set");
    CHECK_OK(veil_circuit_run(circ, ek, ct, 1, &got));
    veil_runtime_set_spread(NULL, NULL);
    CHECK(sx.st == VEIL_OK, "every share ran: %s", veil_status_str(sx.st));
    veil_circuit_stats cs;
    veil_circuit_get_stats(circ, &cs);
    printf("circuit: %zu lookups per run; spread: %d batches, %d jobs (%d multi-value), %d run from messages\n",
           cs.pbs_count, sx.batches, sx.jobs, sx.mv_jobs, sx.remote_jobs);
    CHECK(sx.batches >= 3, "three stages of lookups: %d batches", sx.batches);
    CHECK(sx.mv_jobs > 0, "some jobs are multi-value (both comparisons of x in one rotation)");
    CHECK(sx.remote_jobs > sx.jobs / 2, "most jobs went through messages (%d of %d)", sx.remote_jobs, sx.jobs);
    uint8_t *rb = NULL, *gb = NULL;
    size_t rl = 0, gl = 0;
    CHECK_OK(veil_ciphertexts_serialize(circ, ref, &rb, &rl));
    CHECK_OK(veil_ciphertexts_serialize(circ, got, &gb, &gl));
    CHECK(rl == gl && memcmp(rb, gb, rl) == 0, "the spread run's output ciphertexts are the local run's, bit for bit");
    int64_t o0[8], o1[8], o2[8], c0[8], c1[8], c2[8];
    int64_t *outs[3] = {o0, o1, o2}, *couts[3] = {c0, c1, c2};
    CHECK_OK(veil_circuit_decrypt(circ, sk, got, outs));
    CHECK_OK(veil_circuit_clear(circ, ins, couts));
    CHECK(memcmp(o0, c0, sizeof o0) == 0 && memcmp(o1, c1, sizeof o1) == 0 && memcmp(o2, c2, sizeof o2) == 0, "and they decrypt to the clear answer");
    veil_free(rb), veil_free(gb);

    /* a worker refuses what is not a whole batch: every truncation, and bit flips in the header
     * (but the key id, which the worker looks up before it runs a batch, and the tables' scale,
     * whose every value up to 62 is one) */
    dist_buf m = sx.last;
    CHECK(m.len > 64, "a batch was kept (%zu bytes)", m.len);
    int refused = 0, tried = 0;
    uint64_t *o = NULL;
    size_t nw = 0;
    for (size_t cut = 0; cut < m.len; cut += cut < 256 ? 1 : 997) {
        tried++;
        veil_status st = dist_batch_run(m.p, cut, copy, 1, &o, &nw);
        refused += st != VEIL_OK;
        veil_free(o);
        o = NULL;
    }
    CHECK(refused == tried, "every truncation refused (%d of %d)", refused, tried);
    int flips = 0, ran = 0;
    uint8_t *mm = veil_malloc(m.len);
    for (size_t at = 0; at < 40; at++)
        for (int bit = 0; bit < 8; bit += 3) {
            if ((at >= 8 && at < 16) || (at >= 20 && at < 24)) continue;
            memcpy(mm, m.p, m.len);
            mm[at] ^= (uint8_t)(1u << bit);
            veil_status st = dist_batch_run(mm, m.len, copy, 1, &o, &nw);
            flips++;
            ran += st == VEIL_OK;
            veil_free(o);
            o = NULL;
        }
    printf("broken batches: %d truncations refused; %d bit flips in the header, %d still well-formed\n", tried, flips,
           ran);
    CHECK(ran == 0, "every flipped header bit is refused");
    veil_free(mm);
    dist_buf_free(&sx.last);
    veil_ciphertexts_free(ct), veil_ciphertexts_free(ref), veil_ciphertexts_free(got);
    veil_eval_keys_free(ek), veil_eval_keys_free(copy);
    veil_secret_key_free(sk);
    veil_rng_free(rng);
    veil_circuit_free(circ);
    return check_done("dist_test_wave");
}
