/* Internal to the runtime: what data_source.c needs of data_text.c. */
#ifndef SPECNET_DATA_TEXT_H
#define SPECNET_DATA_TEXT_H

struct sn_text;
void sn_text_free(struct sn_text *t); /* an lm set's stream (sn_dataset.text); NULL is fine */

#endif
