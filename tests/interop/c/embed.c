/*
 * embed.c: text in, numbers out, from C, with nothing but an exported model folder's string-in twin
 * (`edgesbert export --backend openvino --with-tokenizer`) and the OpenVINO C API.
 *
 * There is no tokenizer here: the twin tokenizes inside its graph, with the ops of the openvino-tokenizers
 * extension library, which this program loads into the core before reading the model. It shows that an app
 * in a language other than Python needs only the runtime and the folder's .xml/.bin to embed or score text.
 *
 *   embed EXTENSION_LIB MODEL_XML TEXT [TEXT ...]                    bi-encoder: sentence_embedding rows
 *   embed --pairs EXTENSION_LIB MODEL_XML TEXT PAIR [TEXT PAIR ...]  cross-encoder: logits rows
 *
 * Each output row is printed as one line of space-separated floats (%.9g). Texts are UTF-8. Any failing
 * OpenVINO call is named on stderr with OpenVINO's last error message, and the program exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openvino/c/openvino.h"

/* Run one OpenVINO call; on failure name it, with OpenVINO's message, and exit 1. */
#define CHECK(call)                                                                  \
    do {                                                                             \
        ov_status_e status_ = (call);                                                \
        if (status_ != OK) {                                                         \
            fprintf(stderr, "%s failed (status %d): %s\n", #call, (int)status_,      \
                    ov_get_last_err_msg());                                          \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* A 1-D string tensor holding `count` texts. */
static ov_tensor_t* string_tensor(const char** texts, size_t count) {
    int64_t dims[1] = {(int64_t)count};
    ov_shape_t shape;
    ov_tensor_t* tensor = NULL;
    CHECK(ov_shape_create(1, dims, &shape));
    CHECK(ov_tensor_create_from_string_array(texts, count, shape, &tensor));
    CHECK(ov_shape_free(&shape));
    return tensor;
}

static int usage(const char* program) {
    fprintf(stderr,
            "usage: %s EXTENSION_LIB MODEL_XML TEXT [TEXT ...]\n"
            "       %s --pairs EXTENSION_LIB MODEL_XML TEXT PAIR [TEXT PAIR ...]\n",
            program, program);
    return 2;
}

int main(int argc, char** argv) {
    int pairs = argc > 1 && strcmp(argv[1], "--pairs") == 0;
    int first = 1 + pairs; /* index of EXTENSION_LIB */
    int count = argc - first - 2;
    if (count < 1 || (pairs && count % 2 != 0)) return usage(argv[0]);
    const char* extension = argv[first];
    const char* model_xml = argv[first + 1];
    char** texts = argv + first + 2;
    size_t batch = pairs ? (size_t)count / 2 : (size_t)count;

    ov_core_t* core = NULL;
    ov_model_t* model = NULL;
    ov_compiled_model_t* compiled = NULL;
    ov_infer_request_t* request = NULL;
    CHECK(ov_core_create(&core));
    CHECK(ov_core_add_extension(core, extension)); /* the tokenizer ops of the twin */
    CHECK(ov_core_read_model(core, model_xml, NULL, &model)); /* NULL: the .bin beside the .xml */
    /* f32 arithmetic even on CPUs with bf16, as edgesbert's Python runtime compiles it */
    ov_property_t properties[] = {{ov_property_key_hint_inference_precision, "f32"}};
    CHECK(ov_core_compile_model_props(core, model, "CPU", 1, properties, &compiled));
    CHECK(ov_compiled_model_create_infer_request(compiled, &request));

    /* inputs: "text", and for pairs "text_pair"; argv alternates TEXT PAIR in --pairs mode */
    const char** first_texts = malloc(batch * sizeof *first_texts);
    const char** second_texts = malloc(batch * sizeof *second_texts);
    if (first_texts == NULL || second_texts == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < batch; i++) {
        first_texts[i] = pairs ? texts[2 * i] : texts[i];
        second_texts[i] = pairs ? texts[2 * i + 1] : NULL;
    }
    ov_tensor_t* text = string_tensor(first_texts, batch);
    ov_tensor_t* text_pair = pairs ? string_tensor(second_texts, batch) : NULL;
    CHECK(ov_infer_request_set_tensor(request, "text", text));
    if (pairs) CHECK(ov_infer_request_set_tensor(request, "text_pair", text_pair));
    CHECK(ov_infer_request_infer(request));

    const char* output_name = pairs ? "logits" : "sentence_embedding";
    ov_tensor_t* output = NULL;
    ov_shape_t shape;
    ov_element_type_e type;
    float* data = NULL;
    CHECK(ov_infer_request_get_tensor(request, output_name, &output));
    CHECK(ov_tensor_get_element_type(output, &type));
    CHECK(ov_tensor_get_shape(output, &shape));
    CHECK(ov_tensor_data(output, (void**)&data));
    if (type != F32 || shape.rank != 2 || shape.dims[0] != (int64_t)batch) {
        fprintf(stderr, "%s: expected a float32 (%zu, n) matrix\n", output_name, batch);
        return 1;
    }
    for (int64_t row = 0; row < shape.dims[0]; row++) {
        for (int64_t col = 0; col < shape.dims[1]; col++)
            printf(col ? " %.9g" : "%.9g", data[row * shape.dims[1] + col]);
        putchar('\n');
    }

    CHECK(ov_shape_free(&shape));
    ov_tensor_free(output);
    ov_tensor_free(text);
    if (text_pair) ov_tensor_free(text_pair);
    free(first_texts);
    free(second_texts);
    ov_infer_request_free(request);
    ov_compiled_model_free(compiled);
    ov_model_free(model);
    ov_core_free(core);
    return 0;
}
