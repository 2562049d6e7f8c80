# CLIP tokenizer tests: OpenAI's reference ids from tests/data/clip, and edge cases whose ids
# tests/reference/clip_tokenizer_reference.py computes (after checking itself on those ids).
tv_add_fixture(clip_tokenizer_reference ${THINGSVISION_PYTHON}
               ${CMAKE_CURRENT_SOURCE_DIR}/reference/clip_tokenizer_reference.py
               ${PROJECT_SOURCE_DIR}/data/clip/bpe_simple_vocab_16e6.txt.gz
               ${CMAKE_CURRENT_SOURCE_DIR}/data/clip/tokenizer_cases.jsonl
               ${TV_TEST_DATA_DIR}/clip_tokenizer_reference.jsonl)
tv_add_test(clip_tokenizer_test SOURCES clip_tokenizer_test.cpp COMPONENTS tv_text
            FIXTURES clip_tokenizer_reference LIBS nlohmann_json::nlohmann_json ZLIB::ZLIB Threads::Threads)
