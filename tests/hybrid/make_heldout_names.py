#!/usr/bin/env python3
"""Deterministic generator of a HELD-OUT labeled set for person, organization and location names.

Writes tests/hybrid/data/names_heldout.jsonl in the format of the other labeled sets
({"text": ..., "entities": [{"type": ..., "start": ..., "end": ...}]}, byte offsets into the
UTF-8 text). Nothing in the name recognizer was tuned on this file: its sentence templates and
names are disjoint from make_labeled_set.py and pii_hard_cases.jsonl, and it was written before
the ablation was measured. It stresses what a gazetteer-plus-context recognizer finds hard:
names from many cultures, surnames alone, names that are also words (Rose, Bill, Grant, Will,
Mark), names at a sentence start with no context word, lower-case names in chat, lists,
possessives, hyphenated and non-ASCII names, and negatives (capitalized words that are no
names: sentence starts, products, days and months).

Usage: make_heldout_names.py [--seed N] [--count N] [--out PATH]
"""
import argparse
import json
import os
import random

# Given names from several cultures, none of them in make_labeled_set.py.
FIRST = ["Adebayo", "Chiamaka", "Haruto", "Sakura", "Arjun", "Meera", "Layla", "Omar", "Emre",
         "Defne", "Agnieszka", "Jiří", "Øystein", "Björn", "Renée", "Ștefan", "Çağla", "Nguyệt",
         "Tariq", "Aroha", "Kofi", "Abena", "Mateo", "Valentina", "Ingeborg", "Rafael", "Siobhan",
         "Dmitri", "Svetlana", "Hamid", "Leilani", "Paulo", "Ama", "Jean-Luc", "Anna-Lena",
         "Min-jun", "Seo-yeon", "Nikolaos", "Eleni", "Bongani", "Farida", "Luca", "Freya", "Kenji",
         "Ximena", "Oluwaseun", "Pita", "Noa"]
# Given names that are also common English words.
WORDLIKE = ["Rose", "Bill", "Grant", "Will", "Mark", "Faith", "Hope", "Joy", "Summer", "Drew",
            "Dawn", "Frank", "Jack", "Sky", "Ivy"]
LAST = ["Ogunleye", "Sato", "Raghavan", "Haddad", "Aydın", "Wróbel", "Dvořák", "Ødegård",
        "Åkesson", "Lefèvre", "Mărgineanu", "Öztürk", "Mensah", "Osei", "Ferreira", "Kuznetsova",
        "Rahimi", "Kahananui", "El-Sayed", "O'Neill", "McAllister", "Van der Berg", "Takahashi",
        "Iyer", "Moreau", "Krüger", "Papadopoulos", "Dlamini", "Nakamura", "Bergström", "Álvarez",
        "Ngata", "Petrov", "Rossetti", "Kaur", "Delacroix"]
ORGS = ["Nordlicht Energie GmbH", "Sakura Robotics Co.", "Osei & Mensah LLP", "Helvetia Biotech AG",
        "Red Cedar Foods Inc.", "Andes Mining Corp", "Baltic Freight Ltd", "Kowhai Software Ltd",
        "Marigold Health LLC", "Tamarind Capital Partners", "Lakeshore Credit Union",
        "Polaris Insurance Group", "Nestlé", "Samsung", "Unilever", "Volkswagen", "Airbus",
        "University of Otago", "Bank of Montreal", "Ministry of Health", "Technical University of Munich"]
CITIES = ["Guadalajara", "Ouagadougou", "Wrocław", "Thessaloniki", "Medellín", "Chiang Mai", "Kyoto",
          "Accra", "Bergen", "Cluj-Napoca", "Düsseldorf", "Montréal", "Porto Alegre", "Hyderabad",
          "Auckland", "Marrakesh", "Tallinn", "Cusco", "Da Nang", "Gdańsk", "Lyon", "Mombasa"]
COUNTRIES = ["Ghana", "Peru", "Norway", "Vietnam", "Portugal", "New Zealand", "Morocco", "Chile",
             "Estonia", "Türkiye"]

# Templates: {P} full name, {F} given name, {W} word-like given name, {S} surname, {O}
# organization, {C} city, {K} country, {p} lower-case full name. A numeral suffix (P2) is another
# value of the same kind.
TEMPLATES = [
    "{P} said the package arrived late.",
    "{F} will bring the cake tomorrow.",
    "{S} disagreed with the proposal during the call.",
    "I had lunch with {P} near the station.",
    "Can you forward this to {F} before noon?",
    "Thanks to {F}, {F2} and {F3} for covering my shift.",
    "{F}'s flight lands at noon, so pick her up.",
    "The keys are with {P}'s neighbour.",
    "yesterday i talked to {p} about the rent",
    "lol {f} just texted me again",
    "ok ask {f} if the car is free on sunday",
    "Prof. {S} will chair the session.",
    "The contract was signed by {P} on behalf of {O}.",
    "{W} {S} joined the team in March.",
    "Please call {W} back when you can.",
    "Our new intern, {P}, starts on Monday.",
    "Attendees: {P}, {P2}, {P3}.",
    "- {P}\n- {P2}\n- {P3}",
    "{F} and {F2} moved to {C} last summer.",
    "Met {F} {S} at the airport in {C}.",
    "According to {S}, the numbers look fine.",
    "{P} works as a nurse in {C}.",
    "She married {P} in {K}.",
    "{O} announced new hires in {C}.",
    "I applied for a job at {O}.",
    "The shipment from {O} is delayed.",
    "{C} was freezing this week.",
    "We drove through {C} on the way to {C2}.",
    "The conference moves from {C} to {C2} next year.",
    "My cousin lives in {K} now.",
    "{K} won the match.",
    "Hey {F}, is {O} still hiring?",
    "Note from {F}: the printer on floor 3 is broken.",
    "Signed, {P}",
    "{P} ({O}) will present the roadmap.",
    "Ask Ms. {S} about the invoice.",
    "{W} said yes, and {F} agreed.",
    "Is {F} coming to the party?",
]
# Negatives: capitalized words that are no names, and name-like words used as words.
NEGATIVES = [
    "Monday works better than Friday for me.",
    "The new iPhone and the Galaxy Fold launch in September.",
    "Python and Rust are both installed on the build server.",
    "Please review the attached Excel sheet before Thursday.",
    "Happy New Year to everyone on the team!",
    "Thanks for the quick reply.",
    "We will grant access once the form is signed.",
    "Will the meeting start on time?",
    "Mark the boxes that apply and return the form.",
    "Bill me for the extra hours.",
    "Hope you are doing well.",
    "The rose bushes need water in July.",
    "Summer is the busiest season for us.",
    "Joy and relief spread through the room.",
    "Faith in the plan is growing.",
    "Jack up the car before changing the tyre.",
    "Dawn broke over the hills.",
    "Frank feedback helps the team improve.",
    "Drew a map on the whiteboard and left.",
    "Great work on the release, everyone.",
    "Meeting notes are in the shared folder.",
    "Reminder: the office is closed on Sunday.",
    "Order Status: Shipped. Estimated Delivery: Tuesday.",
    "Click Save, then Export as PDF.",
    "The Quarterly Report is due in October.",
    "Kindly Confirm Receipt Of This Message.",
    "Coffee Machine Out Of Order",
    "Windows Update restarted my laptop overnight.",
    "The Eiffel Tower photo is my new wallpaper.",
    "Tesla Model 3 owners get the update first.",
]
class Builder:
    """Accumulates text and labeled byte spans."""

    def __init__(self):
        self.parts = []
        self.size = 0
        self.entities = []

    def add(self, text, etype=None):
        data = text.encode("utf-8")
        if etype is not None:
            self.entities.append({"type": etype, "start": self.size, "end": self.size + len(data)})
        self.parts.append(text)
        self.size += len(data)

    def example(self):
        return {"text": "".join(self.parts), "entities": self.entities}


def fill(template, r):
    b = Builder()
    i = 0
    chosen = {}
    while i < len(template):
        if template[i] != "{":
            j = template.find("{", i)
            j = len(template) if j < 0 else j
            b.add(template[i:j])
            i = j
            continue
        j = template.index("}", i)
        key = template[i + 1:j]
        kind = key.rstrip("0123456789")
        taken = chosen.setdefault(kind, set())

        def pick(pool):
            options = [v for v in pool if v not in taken]
            value = r.choice(options)
            taken.add(value)
            return value

        if kind == "P":
            b.add(pick(FIRST + WORDLIKE) + " " + pick(LAST), "PERSON")
        elif kind == "p":
            b.add((pick(FIRST) + " " + pick(LAST)).lower(), "PERSON")
        elif kind == "F":
            b.add(pick(FIRST), "PERSON")
        elif kind == "f":
            b.add(pick(FIRST).lower(), "PERSON")
        elif kind == "W":
            b.add(pick(WORDLIKE), "PERSON")
        elif kind == "S":
            b.add(pick(LAST), "PERSON")
        elif kind == "O":
            b.add(pick(ORGS), "ORGANIZATION")
        elif kind == "C":
            b.add(pick(CITIES), "LOCATION")
        elif kind == "K":
            b.add(pick(COUNTRIES), "LOCATION")
        else:
            raise ValueError("unknown slot " + key)
        i = j + 1
    return b.example()


def merge_adjacent_person(example):
    """'{W} {S}' and '{F} {S}' are one person: join labels separated by a single space."""
    text = example["text"].encode("utf-8")
    merged = []
    for e in example["entities"]:
        if (merged and merged[-1]["type"] == "PERSON" and e["type"] == "PERSON"
                and text[merged[-1]["end"]:e["start"]] == b" "):
            merged[-1] = {"type": "PERSON", "start": merged[-1]["start"], "end": e["end"]}
        else:
            merged.append(e)
    example["entities"] = merged
    return example


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--count", type=int, default=420)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "data", "names_heldout.jsonl"))
    args = parser.parse_args()
    r = random.Random(args.seed)
    lines = []
    negatives = list(NEGATIVES)
    for n in range(args.count):
        if n % 6 == 5:  # one line in six is a negative
            lines.append({"text": negatives[(n // 6) % len(negatives)], "entities": []})
        else:
            lines.append(merge_adjacent_person(fill(r.choice(TEMPLATES), r)))
    with open(args.out, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
