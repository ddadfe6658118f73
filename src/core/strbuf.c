#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "veil/core.h"

static int reserve(veil_sb *b, size_t extra)
{
    if (b->failed) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = veil_malloc(cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    if (b->len) memcpy(s, b->s, b->len);
    s[b->len] = 0;
    veil_free(b->s);
    b->s = s;
    b->cap = cap;
    return 1;
}

void veil_sb_printf(veil_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void veil_sb_pad(veil_sb *b, size_t column)
{
    size_t start = b->len;
    while (start > 0 && b->s[start - 1] != '\n') start--;
    /* columns count characters, not bytes: skip UTF-8 continuation bytes */
    size_t col = 0;
    for (size_t i = start; i < b->len; i++)
        if (((unsigned char)b->s[i] & 0xC0) != 0x80) col++;
    if (col >= column || !reserve(b, column - col)) return;
    memset(b->s + b->len, ' ', column - col);
    b->len += column - col;
    b->s[b->len] = 0;
}

char *veil_sb_take(veil_sb *b)
{
    if (b->failed || !reserve(b, 0)) {
        veil_sb_free(b);
        return NULL;
    }
    char *s = b->s;
    s[b->len] = 0;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void veil_sb_free(veil_sb *b)
{
    veil_free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
