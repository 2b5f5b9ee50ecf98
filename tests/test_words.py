"""words.py: the package's word rule in plain Python, checked by hand and against the in-graph TextProcessor."""

from seq2seq_keras.words import word_tokens


def test_word_tokens_rule():
    assert word_tokens("나는 학생이다.") == ["나는", "학생이다", "."]
    assert word_tokens("I am a student.") == ["i", "am", "a", "student", "."]
    assert word_tokens("Hi,there!  (ok)") == ["hi", ",", "there", "!", "(", "ok", ")"]
    assert word_tokens("a\u200bb\tc") == ["a", "b", "c"]  # format and control characters separate words


def test_word_tokens_are_the_words_the_text_processor_makes():
    import tensorflow as tf

    from seq2seq_keras import TextProcessor
    from seq2seq_keras.translation import to_python_strings

    for language, text in [("ko", "나는 학생이다."), ("ko", "그녀는 의사였다!"), ("en", "I am a student, (really).")]:
        processor = TextProcessor.for_language(language)
        assert to_python_strings(processor.tokenize(tf.constant([text])))[0] == word_tokens(text), text
