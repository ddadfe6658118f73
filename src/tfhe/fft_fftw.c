/* FFTW (double) backend of the complex FFT kernel. Plans are made once per size under the
 * caller's lock (fft.c), in place, and executed with the new-array interface, which FFTW
 * documents as thread-safe for arrays of the planning alignment (veil_malloc gives 64 bytes). */
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "fft.h"
#include "veil/core.h"

typedef struct {
    fftw_plan fwd, inv;
} fftw_state;

static void run_fwd(const veil_fft_plan *p, double *buf)
{
    const fftw_state *st = p->backend;
    fftw_execute_dft(st->fwd, (fftw_complex *)buf, (fftw_complex *)buf);
}

static void run_inv(const veil_fft_plan *p, double *buf)
{
    const fftw_state *st = p->backend;
    fftw_execute_dft(st->inv, (fftw_complex *)buf, (fftw_complex *)buf);
}

int veil_fft_backend_init(veil_fft_plan *p)
{
    fftw_state *st = veil_calloc(1, sizeof *st);
    if (!st) return 0;
    double *tmp = veil_malloc(sizeof(double) * p->N);
    if (!tmp) {
        veil_free(st);
        return 0;
    }
    /* FFTW_MEASURE picks the fastest codelets for this machine; VEIL_FFTW_ESTIMATE=1 skips the
     * measurement (faster start-up, slightly slower transforms). */
    const char *est = getenv("VEIL_FFTW_ESTIMATE");
    unsigned flags = (est && strcmp(est, "1") == 0) ? FFTW_ESTIMATE : FFTW_MEASURE;
    int n = (int)p->half;
    st->fwd = fftw_plan_dft_1d(n, (fftw_complex *)tmp, (fftw_complex *)tmp, FFTW_FORWARD, flags);
    st->inv = fftw_plan_dft_1d(n, (fftw_complex *)tmp, (fftw_complex *)tmp, FFTW_BACKWARD, flags);
    veil_free(tmp);
    if (!st->fwd || !st->inv) {
        if (st->fwd) fftw_destroy_plan(st->fwd);
        if (st->inv) fftw_destroy_plan(st->inv);
        veil_free(st);
        return 0;
    }
    p->backend = st;
    p->fwd = run_fwd;
    p->inv = run_inv;
    return 1;
}
