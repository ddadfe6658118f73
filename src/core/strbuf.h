/* Growable text buffer for listings and messages. On allocation failure the buffer stays valid
 * and `failed` is set; veil_sb_take then returns NULL. */
#ifndef VEIL_CORE_STRBUF_H
#define VEIL_CORE_STRBUF_H

#include <stddef.h>

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} veil_sb;

void veil_sb_printf(veil_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void veil_sb_pad(veil_sb *b, size_t column); /* spaces up to `column` chars since the last '\n' */
char *veil_sb_take(veil_sb *b);              /* the text (caller frees with veil_free), buffer reset */
void veil_sb_free(veil_sb *b);

#endif
