"""Verifiable puzzles for the self-improvement experiment: write a function, pass the test cases.

Three tasks, each answered by `def solve(...)`:
  puzzle_arithmetic  "2 + 3 * 4" -> 14      integer +, -, *, / with the usual precedence and parentheses
  puzzle_rpn         "3 4 + 2 *" -> 14      reverse Polish notation, tokens separated by spaces
  puzzle_brackets    "({[]})"   -> True     is every bracket closed by its partner, innermost first?

Division `/` is integer division truncating toward zero, as in C: 7 / -2 = -3, -7 / 2 = -3
(Python's // floors instead: 7 // -2 = -4). A generated expression never divides by zero; literals
are non-negative integers.

Difficulty 1–10 sets the size: arithmetic and RPN use d + 1 numbers of up to 1, 2 or 3 digits
(d ≤ 3, ≤ 7, > 7); brackets use d + 1 pairs nested at most 1 + (d + 1)//2 deep, and half of the
strings are balanced ones with one mutation (a wrong partner, a swap, a deletion or an insertion).

Every test input belongs to one split, chosen by a seeded hash of the input itself, so no
problem (no single test case, even) appears in two splits, and a problem's cases are distinct
inputs. The first test case of an
arithmetic or RPN problem (the prompt's example) always divides, so a solution must get `/`
right: `eval(expression)` returns floats and fails.
"""
import hashlib
import random

from common.errors import PhysloraError
from data.schema import make_record

DEFAULT_SIZES = {"train": 1500, "val": 300, "test": 600}
DEFAULT_CASES = 5
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
CLOSER = {"(": ")", "[": "]", "{": "}"}

SOLUTIONS = {
    "puzzle_arithmetic": '''import re


def solve(expression: str) -> int:
    tokens = re.findall(r"\\d+|[-+*/()]", expression)
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def divide(a, b):
        quotient = abs(a) // abs(b)
        return quotient if (a < 0) == (b < 0) else -quotient

    def factor():
        token = take()
        if token == "(":
            value = expression_value()
            take()
            return value
        return int(token)

    def term():
        value = factor()
        while peek() in ("*", "/"):
            value = value * factor() if take() == "*" else divide(value, factor())
        return value

    def expression_value():
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    return expression_value()''',
    "puzzle_rpn": '''def solve(expression: str) -> int:
    stack = []
    for token in expression.split():
        if token not in ("+", "-", "*", "/"):
            stack.append(int(token))
            continue
        b, a = stack.pop(), stack.pop()
        if token == "+":
            stack.append(a + b)
        elif token == "-":
            stack.append(a - b)
        elif token == "*":
            stack.append(a * b)
        else:
            quotient = abs(a) // abs(b)
            stack.append(quotient if (a < 0) == (b < 0) else -quotient)
    return stack[0]''',
    "puzzle_brackets": '''def solve(text: str) -> bool:
    opener = {")": "(", "]": "[", "}": "{"}
    stack = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif not stack or stack.pop() != opener[char]:
            return False
    return not stack''',
}

TASK_TEXT = {
    "puzzle_arithmetic": ("def solve(expression: str) -> int:",
                          "evaluates an integer arithmetic expression with +, -, *, / and parentheses, "
                          "* and / before + and -, left to right. / is integer division truncating toward zero "
                          "(7 / -2 == -3); no divisor is zero."),
    "puzzle_rpn": ("def solve(expression: str) -> int:",
                   "evaluates an integer expression in reverse Polish notation (tokens separated by spaces, "
                   "operators +, -, *, /). / is integer division truncating toward zero (7 / -2 == -3); "
                   "no divisor is zero."),
    "puzzle_brackets": ("def solve(text: str) -> bool:",
                        "returns True when every bracket in a string of ()[]{} is closed by its own kind, "
                        "innermost first, and False otherwise."),
}


def divide(a: int, b: int) -> int:
    """Integer division truncating toward zero."""
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def random_tree(rng: random.Random, leaves: int, largest: int):
    """A random binary expression tree: an int, or (operator, left, right); / is rarer, as it mostly
    gives 0 on these numbers."""
    if leaves == 1:
        return rng.randint(0, largest)
    left = rng.randint(1, leaves - 1)
    return rng.choice("++--**/"), random_tree(rng, left, largest), random_tree(rng, leaves - left, largest)


def evaluate(tree) -> int:
    """The tree's value; ZeroDivisionError when some divisor is zero."""
    if isinstance(tree, int):
        return tree
    op, left, right = tree
    a, b = evaluate(left), evaluate(right)
    return divide(a, b) if op == "/" else a + b if op == "+" else a - b if op == "-" else a * b


def infix(tree, parent_precedence: int = 0, right_operand: bool = False) -> str:
    """Written with only the parentheses it needs (a right operand of equal precedence needs them:
    a - (b - c), a / (b * c))."""
    if isinstance(tree, int):
        return str(tree)
    op, left, right = tree
    text = f"{infix(left, PRECEDENCE[op])} {op} {infix(right, PRECEDENCE[op], True)}"
    needs = PRECEDENCE[op] < parent_precedence or (PRECEDENCE[op] == parent_precedence and right_operand)
    return f"({text})" if needs else text


def postfix(tree) -> str:
    if isinstance(tree, int):
        return str(tree)
    op, left, right = tree
    return f"{postfix(left)} {postfix(right)} {op}"


def expression_case(rng: random.Random, difficulty: int, render) -> tuple:
    largest = 9 if difficulty <= 3 else 99 if difficulty <= 7 else 999
    while True:
        tree = random_tree(rng, difficulty + 1, largest)
        try:
            return render(tree), evaluate(tree)
        except ZeroDivisionError:
            continue


def is_balanced(text: str) -> bool:
    stack = []
    for char in text:
        if char in CLOSER:
            stack.append(char)
        elif not stack or CLOSER[stack.pop()] != char:
            return False
    return not stack


def balanced_string(rng: random.Random, pairs: int, max_depth: int) -> str:
    out, stack, opened = [], [], 0
    while opened < pairs or stack:
        can_open = opened < pairs and len(stack) < max_depth
        if can_open and (not stack or rng.random() < 0.5):
            stack.append(rng.choice("([{"))
            out.append(stack[-1])
            opened += 1
        else:
            out.append(CLOSER[stack.pop()])
    return "".join(out)


def mutate(rng: random.Random, text: str) -> str:
    """One near miss: a wrong partner, two neighbours swapped, a deletion or an insertion."""
    i = rng.randrange(len(text))
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + rng.choice([c for c in "()[]{}" if c != text[i]]) + text[i + 1:]
    if kind == 1 and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 2:
        return text[:i] + text[i + 1:]
    return text[:i] + rng.choice("()[]{}") + text[i:]


def brackets_case(rng: random.Random, difficulty: int) -> tuple:
    text = balanced_string(rng, difficulty + 1, 1 + (difficulty + 1) // 2)
    if rng.random() < 0.5:
        while is_balanced(text):
            text = mutate(rng, text)
    return text, is_balanced(text)


def make_case(task: str, rng: random.Random, difficulty: int) -> tuple:
    if task == "puzzle_arithmetic":
        return expression_case(rng, difficulty, infix)
    if task == "puzzle_rpn":
        return expression_case(rng, difficulty, postfix)
    return brackets_case(rng, difficulty)


def split_of_input(task: str, text: str, seed: int, sizes: dict) -> str:
    """The split an input belongs to: a seeded hash, in proportion to the split sizes."""
    digest = hashlib.sha256(f"{seed}:{task}:{text}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2 ** 64 * sum(sizes.values())
    for split, size in sizes.items():
        if point < size:
            return split
        point -= size
    return split


def prompt_text(task: str, example: tuple) -> str:
    signature, behaviour = TASK_TEXT[task]
    return f"Write a Python function `{signature}` that {behaviour}\nExample: solve({example[0]!r}) == {example[1]!r}"


def parse_difficulty(text: str) -> tuple:
    """"4" -> (4, 4); "1-10" -> (1, 10)."""
    try:
        low, _, high = text.partition("-")
        low, high = int(low), int(high or low)
    except ValueError:
        raise PhysloraError(f"--difficulty {text!r}: expected a number or a range like 1-10") from None
    if not 1 <= low <= high <= 10:
        raise PhysloraError(f"--difficulty {text!r}: difficulties run from 1 to 10, low before high")
    return low, high


MAX_DRAWS = 50_000  # per test case: a split's share of the few inputs an easy level has can be empty


def generate(sizes: dict, seed: int, difficulty: tuple, cases: int) -> tuple:
    if cases < 1:
        raise PhysloraError(f"--cases {cases}: need at least one test case per problem")
    rng = random.Random(seed)
    tasks = tuple(SOLUTIONS)
    splits = {}
    for split, size in sizes.items():
        records = []
        for index in range(size):
            task, level = tasks[index % len(tasks)], rng.randint(*difficulty)
            tests, draws = [], 0
            while len(tests) < cases:
                draws += 1
                if draws > MAX_DRAWS * cases:
                    raise PhysloraError(f"{split}: no new {task} test case of difficulty {level} belongs to this split "
                                        f"(each input's split is a hash share, and that level has few inputs); make "
                                        f"the split sizes less lopsided or raise the lowest --difficulty")
                text, output = make_case(task, rng, level)
                # The first case divides: otherwise Python's eval() (true division) would pass many problems.
                divides = task == "puzzle_brackets" or tests or "/" in text
                repeated = any(case["input"] == text for case in tests)  # a repeat would test nothing new
                if divides and not repeated and split_of_input(task, text, seed, sizes) == split:
                    tests.append({"input": text, "output": output})
            example = (tests[0]["input"], tests[0]["output"])
            answer = {"function": "solve", "signature": TASK_TEXT[task][0], "tests": tests}
            records.append(make_record(f"puzzle-{split}-{index:05d}", task, split, prompt_text(task, example),
                                       f"```python\n{SOLUTIONS[task]}\n```", answer,
                                       {"family": task, "difficulty": level}))
        splits[split] = records
    card = {"kind": "puzzles", "seed": seed, "difficulty": list(difficulty), "cases_per_problem": cases,
            "division": "integer division truncating toward zero; no divisor is zero",
            "split_rule": "each test input belongs to the split picked by a seeded hash of the input"}
    return splits, card


def label_of(record: dict) -> str:
    return record["task"]
