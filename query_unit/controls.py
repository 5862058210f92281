"""Control questions, written by hand: facts a small model knows, and questions that define
their own made-up words (what the prompt defines is known, so no search is needed).

Each was checked against the shipped SmolLM2-135M, closed-book and greedy: questions it got
wrong were dropped. A gold answer lists alternatives with "|". The split into the training
and the evaluation controls is fixed by position.
"""

from __future__ import annotations

KNOWN_FACTS: list[tuple[str, str]] = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of England?", "London"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of China?", "Beijing"),
    ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of Canada?", "Ottawa"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the closest star to Earth?", "Sun"),
    ("What gas do plants absorb from the air for photosynthesis?", "carbon dioxide"),
    ("What is the chemical symbol for water?", "H2O"),
    ("What is the boiling point of water in degrees Celsius?", "100"),
    ("How many days are there in a week?", "seven|7"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("Who painted the Mona Lisa?", "Leonardo"),
    ("Who developed the theory of relativity?", "Einstein"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("What is the tallest mountain in the world?", "Everest"),
    ("What is the longest river in Africa?", "Nile"),
    ("What color is the sky on a clear day?", "blue"),
    ("What do bees make?", "honey"),
    ("What is the largest mammal?", "whale"),
    ("What language is spoken in Brazil?", "Portuguese"),
    ("What currency is used in Japan?", "yen"),
    ("What organ pumps blood through the body?", "heart"),
    ("What is 7 times 8?", "56"),
    ("In which country are the pyramids of Giza?", "Egypt"),
    ("What is the currency of the United States?", "dollar"),
    ("What is the primary language spoken in Mexico?", "Spanish"),
    ("Who was the first president of the United States?", "Washington"),
    ("How many sides does a triangle have?", "three|3"),
    ("What is frozen water called?", "ice"),
    ("Which ocean lies between Europe and North America?", "Atlantic"),
    ("What is the opposite of hot?", "cold"),
    ("What do cows drink?", "water"),
    ("What is the capital of Australia?", "Canberra"),
    ("What instrument has black and white keys?", "piano"),
    ("How many minutes are in an hour?", "60"),
    ("What is the color of grass?", "green"),
    ("What is the largest desert in the world?", "Sahara"),
    ("What shape has four equal sides?", "square"),
    ("What is the capital of Greece?", "Athens"),
    ("What is the capital of Ireland?", "Dublin"),
    ("What is the capital of Austria?", "Vienna"),
    ("What is the capital of Sweden?", "Stockholm"),
    ("What is the capital of Norway?", "Oslo"),
    ("What is the capital of India?", "Delhi"),
    ("What is the capital of South Korea?", "Seoul"),
    ("What is the capital of Thailand?", "Bangkok"),
    ("What is the capital of Argentina?", "Buenos Aires"),
    ("What is the capital of Kenya?", "Nairobi"),
    ("Who wrote Hamlet?", "Shakespeare"),
    ("Who discovered penicillin?", "Fleming"),
    ("Who invented the telephone?", "Bell"),
    ("Who was the first man to walk on the Moon?", "Armstrong"),
    ("Who wrote Pride and Prejudice?", "Austen"),
    ("What planet do we live on?", "Earth"),
    ("What color is a ripe tomato?", "red"),
    ("What is 5 plus 5?", "10|ten"),
    ("What language is spoken in France?", "French"),
    ("What language is spoken in Germany?", "German"),
    ("What is the currency of the United Kingdom?", "pound"),
    ("What is the capital of Poland?", "Warsaw"),
    ("What is the capital of Peru?", "Lima"),
    ("What is the capital of Cuba?", "Havana"),
]

SELF_DEFINED: list[tuple[str, str]] = [
    ("Let's say a flegblarg is a small boat made of reeds. What is a flegblarg made of?", "reeds"),
    ("A zibbet is a red fruit that grows on cliffs. Where does a zibbet grow?", "cliffs"),
    ("My cat is named Quorvel and she is grey. What color is Quorvel?", "grey|gray"),
    ("Suppose the word 'snarvle' means to whisper loudly. What does snarvle mean?", "whisper"),
    ("In this puzzle, a plimster is a coin worth five cents. How much is a plimster worth?", "five"),
    ("The planet Ulthar in my book has three moons. How many moons does Ulthar have?", "three"),
    ("A drennock is a bird that eats only acorns. What does a drennock eat?", "acorns"),
    ("We call our robot Bexley, and it was built in 2020. When was Bexley built?", "2020"),
    ("In my recipe, vosh is a sauce made from roasted pears. What is vosh made from?", "pears"),
    ("The town of Kellimar in my game sits on a frozen lake. Where does Kellimar sit?", "lake"),
    ("A grumbleseed is a plant that sings when it rains. When does a grumbleseed sing?", "rain"),
    ("Picture a creature called a wumpet with six legs. How many legs does a wumpet have?", "six"),
]


EVAL_CONTROLS: list[tuple[str, str]] = KNOWN_FACTS[:30] + SELF_DEFINED[:7]
TRAIN_CONTROLS: list[tuple[str, str]] = KNOWN_FACTS[30:] + SELF_DEFINED[7:]
