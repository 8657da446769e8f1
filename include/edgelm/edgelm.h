/* edgelm C API: a small, stable surface for bindings (Python ctypes, Swift, Kotlin/JNI, ...).
 * Objects are opaque handles created and freed in pairs. Functions that can fail take `char** error`:
 * on failure they return NULL (or a negative count) and, if error is not NULL, store a message the
 * caller frees with edgelm_string_free. */
#ifndef EDGELM_EDGELM_H
#define EDGELM_EDGELM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edgelm_engine edgelm_engine;
typedef struct edgelm_session edgelm_session;

/* Loads a GGUF model. config_json may be NULL or a config such as {"use_mmap": true, "threads": 2}. */
edgelm_engine* edgelm_engine_load(const char* model_path, const char* config_json, char** error);
void edgelm_engine_free(edgelm_engine* engine);

/* Tokenizes text (BOS added as the model asks). Returns the token count, or -1 on error. When the
 * count exceeds capacity, only the first `capacity` ids are written: call again with more room. */
int32_t edgelm_tokenize(const edgelm_engine* engine, const char* text, int32_t* tokens, int32_t capacity,
                        char** error);

/* One conversation: its own KV cache. A session must not outlive its engine. */
edgelm_session* edgelm_session_new(const edgelm_engine* engine, char** error);
void edgelm_session_free(edgelm_session* session);

typedef struct {
  int32_t max_tokens; /* < 0: until end of generation */
  float temperature;  /* 0: greedy */
  int32_t top_k;
  float top_p;
  float min_p;
  float repeat_penalty;
  uint64_t seed;
} edgelm_generate_params;

edgelm_generate_params edgelm_generate_params_default(void);

/* Receives generated text as it is produced (valid UTF-8 pieces); return 0 to stop early. */
typedef int (*edgelm_text_callback)(const char* text, size_t length, void* user_data);

/* Generates a continuation of prompt; returns the whole generated text (free with edgelm_string_free)
 * or NULL on error. on_text may be NULL. */
char* edgelm_generate(edgelm_session* session, const char* prompt, const edgelm_generate_params* params,
                      edgelm_text_callback on_text, void* user_data, char** error);

void edgelm_string_free(char* s);

#ifdef __cplusplus
}
#endif

#endif /* EDGELM_EDGELM_H */
