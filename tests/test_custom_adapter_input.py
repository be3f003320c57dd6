from llm.adapters.custom import without_personal_data


def test_personal_data_is_removed_before_the_custom_model_reads_the_question():
    assert without_personal_data("My card 4111 1111 1111 1111 has not arrived yet") == "My card has not arrived yet"
    assert without_personal_data("mail me at jo@example.com about my top-up") == "mail me at about my top-up"
    assert without_personal_data("Where is my card?") == "Where is my card?"
    assert without_personal_data("4111 1111 1111 1111") == "4111 1111 1111 1111"  # nothing left: keep the input
