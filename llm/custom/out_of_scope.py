"""Synthetic non-banking prompts: greetings, chit-chat and general requests, written here, not taken from data.

Training shows them to the model with a uniform target over the 77 intents, so that text unlike any banking
question gets a low confidence; the out-of-scope threshold is tuned on them and on the validation slice.
"""

from __future__ import annotations

import random

GREETINGS = (
    "hi",
    "hi there",
    "hiya",
    "hello",
    "hello bot",
    "hey",
    "hey there",
    "good morning",
    "good evening",
    "good afternoon",
    "yo",
    "hi bot",
    "hello there",
    "howdy",
    "greetings",
    "thanks",
    "thank you",
    "bye",
    "goodbye",
    "ok",
    "cool",
    "nice",
    "lol",
    "how are you",
    "how are you doing today",
    "what's up",
    "who are you",
    "are you a robot",
    "what is your name",
    "see you later",
    "have a nice day",
    "good night",
)

REQUESTS = (
    "write me a poem",
    "write a poem about {topic}",
    "tell me a joke",
    "tell me a joke about {topic}",
    "what's the weather",
    "what's the weather like in {city}",
    "will it rain tomorrow in {city}",
    "what is the capital of {country}",
    "how tall is mount everest",
    "who won the world cup",
    "recommend a good movie",
    "recommend a book about {topic}",
    "what time is it in {city}",
    "how do i cook {food}",
    "how do i bake {food}",
    "who won the {sport} match yesterday",
    "give me a recipe for {food}",
    "what is the meaning of life",
    "play some music",
    "sing me a song",
    "translate hello into {language}",
    "how do you say thank you in {language}",
    "what is {n} times {m}",
    "solve {n} plus {m}",
    "who is the president of {country}",
    "how far is the moon",
    "what should i eat for dinner",
    "book a table for two at an italian restaurant",
    "set an alarm for {n} am",
    "remind me to call mom",
    "what's the score of the {sport} game",
    "who is the best {sport} player",
    "how do i learn {language}",
    "how do i fix my {thing}",
    "my {thing} is broken",
    "write a story about {topic}",
    "summarize the news today",
    "what's a good name for a {animal}",
    "how long do {animal}s live",
    "how do i train my {animal}",
    "explain quantum physics",
    "write python code to sort a list",
    "what is the speed of light",
    "how many planets are there",
    "plan a trip to {city}",
    "find me a flight to {city}",
    "what are the opening hours of the museum",
    "help me with my homework",
    "what is the best {thing} to buy",
    "can you draw a {animal}",
    "tell me about {topic}",
    "i am bored",
    "i feel sad today",
    "do you like {food}",
    "what's your favourite {sport} team",
)

FILL = {
    "topic": ("the sea", "love", "autumn", "cats", "space", "friendship", "the mountains", "history", "rain"),
    "city": ("paris", "london", "tokyo", "new york", "berlin", "madrid", "sydney", "rome", "toronto"),
    "country": ("france", "japan", "brazil", "canada", "italy", "kenya", "australia", "spain"),
    "food": ("pasta", "pancakes", "rice", "a cake", "soup", "pizza", "curry", "tacos", "bread", "cookies"),
    "language": ("spanish", "french", "german", "japanese", "italian", "chinese"),
    "sport": ("football", "tennis", "basketball", "baseball", "cricket", "hockey"),
    "thing": ("bike", "laptop", "car", "printer", "tv", "fridge", "washing machine", "headphones"),
    "animal": ("dog", "cat", "parrot", "hamster", "rabbit", "horse", "fish"),
    "n": tuple(str(i) for i in range(2, 13)),
    "m": tuple(str(i) for i in range(2, 13)),
}

DECORATIONS = ("{}", "{}?", "{}!", "please {}", "{} please", "can you {}", "hey, {}", "{} :)", "could you {}")


def synthetic_out_of_scope(count: int, seed: int = 0) -> list[str]:
    """`count` distinct-as-possible non-banking prompts, deterministic under `seed`."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.3:
            base = rng.choice(GREETINGS)
        else:
            base = rng.choice(REQUESTS)
            for key, values in FILL.items():
                base = base.replace("{" + key + "}", rng.choice(values))
        out.append(rng.choice(DECORATIONS).format(base))
    return out
