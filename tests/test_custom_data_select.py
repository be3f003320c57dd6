from llm.banking77 import Example
from llm.custom.data import select


def test_select_keeps_the_first_examples_of_the_wanted_intents_in_order():
    examples = [Example(f"q{i}", intent) for i, intent in enumerate(["a", "b", "a", "c", "a", "b"])]
    assert select(examples, None, None) == examples
    assert [e.text for e in select(examples, ["a", "b"], None)] == ["q0", "q1", "q2", "q4", "q5"]
    assert [e.text for e in select(examples, None, 1)] == ["q0", "q1", "q3"]
    assert [e.text for e in select(examples, ["a"], 2)] == ["q0", "q2"]
