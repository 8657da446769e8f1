#!/usr/bin/env python3
"""Deterministic generator of the redactor's labeled evaluation set.

Writes tests/hybrid/data/pii_generated.jsonl: one JSON object per line,
{"text": ..., "entities": [{"type": ..., "value": ...}]}, built from sentence templates filled
with realistic values. Structured values follow their published rules, computed here
independently of the C++ code: card numbers get a Luhn check digit (ISO/IEC 7812), IBANs get
ISO 13616 mod-97 check digits, SSNs avoid the ranges the SSA never issues, phone numbers follow
each country's numbering plan (NANP, Ofcom, BNetzA, ARCEP). Person names mix common names with
rarer ones on purpose, so the name figures measure more than the gazetteer.

Usage: make_labeled_set.py [--seed N] [--count N] [--out PATH]
"""
import argparse
import json
import os
import random

FIRST = ["James", "Maria", "Sarah", "Michael", "Olivia", "David", "Emma", "Daniel", "Sophie", "Thomas",
         "Anna", "Lukas", "Chloé", "José", "Giulia", "Priya", "Mohammed", "Fatima", "Wei", "Yuki",
         "Kwame", "Ngozi", "Søren", "Zoë", "Łukasz", "Ingrid", "Mehmet", "Carlos", "Elena", "Hannah",
         # rarer names, mostly outside any common-name list
         "Thandiwe", "Oisín", "Xiomara", "Bartholomew", "Teodora", "Ravindra", "Aurelio", "Saoirse",
         "Ilse", "Tomasz", "Anouk", "Kalani", "Ebru", "Dagny", "Ignatius", "Marisol"]
LAST = ["Smith", "Johnson", "Garcia", "Müller", "Schmidt", "Rossi", "Dubois", "Nguyen", "Patel",
        "Kowalski", "Okonkwo", "Tanaka", "Andersson", "O'Brien", "Fernández", "Silva", "Yılmaz",
        "Khan", "Chen", "Novak", "Brown", "Wilson",
        "Featherstonehaugh", "Abernathy", "Villanueva", "Lindqvist", "Achterberg", "Castellanos",
        "Oyelaran", "Przybylski", "Haverkamp", "Quintero"]
ORG_STEMS = ["Acme Widgets", "Globex", "Initech", "Umbrella Pharma", "Stark", "Wayne Logistics",
             "Blue Harbor", "Northwind Traders", "Vandelay", "Cyberdyne", "Hooli", "Pied Piper",
             "Tyrell", "Soylent", "Kessler & Partner", "Brightline"]
ORG_SUFFIXES = ["Inc.", "Corporation", "LLC", "Ltd", "GmbH", "Holdings", "Group", "AG"]
ORG_KNOWN = ["Microsoft", "Siemens", "Deutsche Bank", "University of Leeds", "Bank of America",
             "Stanford University", "Barclays", "Toyota"]
CITIES = ["Lisbon", "Nairobi", "Berlin", "Toronto", "Osaka", "Melbourne", "Barcelona", "Kraków",
          "São Paulo", "Zürich", "Edinburgh", "Chicago", "Seoul", "Casablanca", "Dublin", "Hanoi",
          "Reykjavik", "Valparaíso", "Tbilisi", "Ljubljana"]
DOMAINS = ["example.com", "mail.example.org", "firma-beispiel.de", "acme.co.uk", "uni-leeds.ac.uk",
           "posteo.net", "example.io"]

IBAN_SPECS = {  # country: BBAN layout as (kind, length) parts; n digits, a upper letters, c alnum
    "DE": [("n", 8), ("n", 10)], "GB": [("a", 4), ("n", 6), ("n", 8)], "FR": [("n", 10), ("c", 11), ("n", 2)],
    "NL": [("a", 4), ("n", 10)], "ES": [("n", 20)], "IT": [("a", 1), ("n", 10), ("c", 12)],
    "CH": [("n", 5), ("c", 12)], "BE": [("n", 12)], "AT": [("n", 16)], "PL": [("n", 24)],
}


def luhn_complete(prefix_digits):
    total = 0
    for i, ch in enumerate(reversed(prefix_digits)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix_digits + str((10 - total % 10) % 10)


def card(r):
    kind = r.choice(["visa", "mc", "amex", "discover"])
    if kind == "visa":
        body, length, groups = "4" + "".join(r.choice("0123456789") for _ in range(14)), 16, [4, 4, 4, 4]
    elif kind == "mc":
        body, length, groups = str(r.randint(51, 55)) + "".join(r.choice("0123456789") for _ in range(13)), 16, [4, 4, 4, 4]
    elif kind == "amex":
        body, length, groups = r.choice(["34", "37"]) + "".join(r.choice("0123456789") for _ in range(12)), 15, [4, 6, 5]
    else:
        body, length, groups = "6011" + "".join(r.choice("0123456789") for _ in range(11)), 16, [4, 4, 4, 4]
    digits = luhn_complete(body)
    assert len(digits) == length
    sep = r.choice([" ", "-", "", " "])
    parts, pos = [], 0
    for g in groups:
        parts.append(digits[pos:pos + g])
        pos += g
    return sep.join(parts)


def iban(r):
    country = r.choice(sorted(IBAN_SPECS))
    bban = ""
    for kind, n in IBAN_SPECS[country]:
        alphabet = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}[kind]
        bban += "".join(r.choice(alphabet) for _ in range(n))
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    compact = country + "%02d" % (98 - number % 97) + bban
    if r.random() < 0.6:
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return compact


def ssn(r):
    area = r.choice([a for a in range(1, 900) if a != 666])
    return "%03d-%02d-%04d" % (area, r.randint(1, 99), r.randint(1, 9999))


def phone(r):
    kind = r.randrange(10)
    d = lambda n: "".join(r.choice("0123456789") for _ in range(n))
    if kind <= 2:  # NANP: NPA from real area codes, NXX 2-9 not N11 or 555
        npa = r.choice(["212", "310", "415", "617", "312", "206", "303", "404", "512", "702", "919", "646"])
        while True:
            nxx = str(r.randint(2, 9)) + d(2)
            if nxx[1:] != "11" and nxx != "555":
                break
        line = d(4)
        fmt = r.choice(["({0}) {1}-{2}", "{0}-{1}-{2}", "{0}.{1}.{2}", "+1 {0} {1} {2}", "+1-{0}-{1}-{2}", "1 ({0}) {1}-{2}"])
        return fmt.format(npa, nxx, line)
    if kind <= 4:  # UK: London 020 7/8 + 7 digits, Manchester 0161, mobiles 07[4-9]
        variant = r.randrange(3)
        if variant == 0:
            local = r.choice("78") + d(3) + " " + d(4)
            return r.choice(["020 " + local, "+44 20 " + local, "(020) " + local])
        if variant == 1:
            return r.choice(["0161 ", "+44 161 "]) + str(r.randint(2, 9)) + d(2) + " " + d(4)
        mobile = "7" + r.choice("45789") + d(2) + " " + d(6)
        return r.choice(["0" + mobile, "+44 " + mobile])
    if kind <= 6:  # Germany: Berlin 030 + 8 digits, Munich 089, mobiles 015x/016x/017x
        variant = r.randrange(3)
        if variant == 0:
            return r.choice(["030 ", "+49 30 ", "030/"]) + str(r.randint(2, 9)) + d(7)
        if variant == 1:
            return r.choice(["089 ", "+49 89 "]) + str(r.randint(2, 9)) + d(7)
        prefix = r.choice(["151", "152", "160", "170", "171", "172", "176"])
        return r.choice(["0" + prefix + " ", "+49 " + prefix + " "]) + str(r.randint(1, 9)) + d(7)
    if kind <= 8:  # France: 0[1-5] geographic, 06/07 mobile, pairs of digits
        first = r.choice("1234567")
        pairs = " ".join(d(2) for _ in range(4))
        return r.choice(["0" + first + " " + pairs, "+33 " + first + " " + pairs])
    # Other countries, international format only
    return r.choice([
        "+91 9" + d(4) + " " + d(5),                    # India mobile
        "+81 3-" + str(r.randint(3, 6)) + d(3) + "-" + d(4),  # Tokyo
        "+61 2 9" + d(3) + " " + d(4),                   # Sydney
        "+55 11 9" + str(r.randint(6, 9)) + d(3) + "-" + d(4),  # São Paulo mobile
        "+34 6" + d(2) + " " + d(3) + " " + d(3),        # Spain mobile
    ])


def ipv4(r):
    while True:
        first = r.randint(1, 223)
        if first not in (10, 127):
            break
    return ".".join(str(x) for x in [first, r.randint(0, 255), r.randint(0, 255), r.randint(1, 254)])


def ipv6(r):
    groups = ["%x" % r.randint(0, 0xFFFF) for _ in range(8)]
    if r.random() < 0.5:
        return ":".join(groups)
    return "2001:db8:" + ":".join(groups[:2]) + "::" + groups[7]


def mac(r):
    octets = ["%02x" % r.randint(0, 255) for _ in range(6)]
    if r.random() < 0.15:
        hexes = "".join(octets)
        return ".".join(hexes[i:i + 4] for i in range(0, 12, 4))
    sep = r.choice([":", "-"])
    text = sep.join(octets)
    return text.upper() if r.random() < 0.5 else text


def email(r, first, last):
    def ascii_fold(s):
        table = str.maketrans("éüöäøłóíšçãëıñ", "euoaoloiscaein")
        return s.lower().translate(table).replace("'", "").replace("ł", "l").replace("ø", "o")
    f, l = ascii_fold(first), ascii_fold(last)
    local = r.choice([f + "." + l, f + "_" + l + str(r.randint(1, 99)), f[0] + l, f + "+news", l + "." + f])
    return local + "@" + r.choice(DOMAINS)


def url(r):
    host = r.choice(["www.example-shop.com", "portal.acme.io", "intranet.example.org", "www.beispiel.de",
                     "docs.example.net"])
    path = r.choice(["/account/%d" % r.randint(1000, 99999), "/users/%s" % r.choice(["jsmith", "m.garcia", "ana-k"]),
                     "/orders?id=%d&ref=mail" % r.randint(100, 9999), "/profile", "/reset-password/%x" % r.getrandbits(32)])
    scheme = r.choice(["https://", "http://", "https://", ""])
    if scheme == "" and not host.startswith("www."):
        scheme = "https://"
    return scheme + host + path


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def date(r):
    y, m, d = r.randint(1940, 2030), r.randint(1, 12), r.randint(1, 28)
    return r.choice(["%04d-%02d-%02d" % (y, m, d), "%d/%d/%04d" % (m, d, y), "%02d.%02d.%04d" % (d, m, y),
                     "%s %d, %04d" % (MONTHS[m - 1], d, y), "%d %s %04d" % (d, MONTHS[m - 1], y),
                     "%s %d" % (MONTHS[m - 1][:3] + ".", d)])


def address(r):
    kind = r.randrange(4)
    if kind == 0:
        street = r.choice(["Maple", "Oak", "Pine", "Cedar", "Elm", "Washington", "Lake View", "Sunset", "Highland"])
        suffix = r.choice(["Street", "Avenue", "Road", "Drive", "Lane", "Blvd.", "St.", "Ave", "Court"])
        city, state, zipc = r.choice([("Springfield", "IL", "62704"), ("Portland", "OR", "97205"),
                                      ("Austin", "TX", "78701"), ("Denver", "CO", "80202"), ("Boston", "MA", "02118")])
        unit = r.choice(["", "", ", Apt 4B", ", Suite 210", " #12"])
        sep = r.choice([", ", ", ", "\n"])
        return "%d %s %s%s%s%s, %s %s" % (r.randint(1, 9999), street, suffix, unit, sep, city, state, zipc)
    if kind == 1:
        street = r.choice(["Baker Street", "Abbey Road", "Kings Road", "Station Road", "Church Lane", "Victoria Gardens"])
        city, code = r.choice([("London", "NW1 6XE"), ("Manchester", "M1 4BT"), ("Leeds", "LS2 9JT"), ("Bristol", "BS1 5TR")])
        return "%d %s, %s %s" % (r.randint(1, 250), street, city, code)
    if kind == 2:
        street = r.choice(["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Schillerplatz", "Goethestraße"])
        city, code = r.choice([("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095"), ("Köln", "50667")])
        return "%s %d, %s %s" % (street, r.randint(1, 120), code, city)
    street = r.choice(["rue de la Paix", "avenue des Champs-Élysées", "boulevard Saint-Michel", "rue Victor Hugo"])
    city, code = r.choice([("Paris", "75002"), ("Lyon", "69002"), ("Marseille", "13001")])
    return "%d %s, %s %s" % (r.randint(1, 150), street, code, city)


def person(r):
    return r.choice(FIRST) + " " + r.choice(LAST)


def organization(r):
    if r.random() < 0.3:
        return r.choice(ORG_KNOWN)
    return r.choice(ORG_STEMS) + " " + r.choice(ORG_SUFFIXES)


TEMPLATES = [
    "Hi, my name is {PERSON} and you can reach me at {EMAIL} or {PHONE}.",
    "Please charge my card {CREDIT_CARD} for the order and send the receipt to {EMAIL}.",
    "Wire the refund to IBAN {IBAN}, account holder {PERSON}.",
    "My SSN is {SSN} and my date of birth is {DATE}.",
    "The server at {IP_ADDRESS} keeps dropping connections from {IP_ADDRESS2}.",
    "Device {MAC_ADDRESS} was seen on the guest network yesterday.",
    "Reset your password here: {URL}",
    "Ship it to {ADDRESS}, attention {PERSON}.",
    "Dear {PERSON},\nthank you for your application to {ORGANIZATION}. We will call you on {PHONE}.",
    "{PERSON} from {ORGANIZATION} flew to {LOCATION} on {DATE}.",
    "Call me back at {PHONE} after 6pm, or text {PHONE2}.",
    "Our office moved to {ADDRESS}. New phone: {PHONE}.",
    "I was born in {LOCATION} on {DATE} and now work for {ORGANIZATION}.",
    "Invoice for {PERSON} ({EMAIL}), card ending in the number {CREDIT_CARD}, billing address {ADDRESS}.",
    "Please update my bank details to {IBAN} before {DATE}.",
    "Router config: lan ip {IP_ADDRESS}, ipv6 {IPV6}, mac {MAC_ADDRESS}.",
    "Regards,\n{PERSON}\n{ORGANIZATION}\n{PHONE}",
    "Meeting with Dr. {LAST} in {LOCATION} is confirmed for {DATE}.",
    "Forwarding the complaint from {EMAIL}; see {URL} for the ticket.",
    "Social security number: {SSN}. Employer: {ORGANIZATION}.",
    "We met {PERSON} at the conference in {LOCATION}.",
    "Contact person: {PERSON}, mobile {PHONE}, email {EMAIL}.",
]

NEGATIVES = [
    "The meeting has 25 attendees and the venue costs $1,299.99 per day.",
    "Order #A-55821 shipped in 3 boxes weighing 12.5 kg in total.",
    "Please upgrade to version 2.4.1 before the end of the quarter.",
    "The recipe needs 250 g of flour, 2 eggs and 100 ml of milk.",
    "Our revenue grew by 14 percent to 3,400,000 euros last year.",
    "Set the timeout to 3000 ms and retry 5 times.",
    "The train leaves at 10:45 from platform 9.",
    "Room 1204 is on the twelfth floor.",
    "Chapter 7 covers pages 112 to 168.",
    "Will you bring the grill? Grace before the meal is a family habit.",
]


def fill(r, template):
    values = {}
    entities = []
    first, last = r.choice(FIRST), r.choice(LAST)

    def take(key, etype, value):
        values[key] = value
        entities.append({"type": etype, "value": value})

    for key in ["PERSON", "EMAIL", "PHONE", "PHONE2", "CREDIT_CARD", "IBAN", "SSN", "DATE", "IP_ADDRESS",
                "IP_ADDRESS2", "IPV6", "MAC_ADDRESS", "URL", "ADDRESS", "ORGANIZATION", "LOCATION", "LAST"]:
        if "{" + key + "}" not in template:
            continue
        if key == "PERSON":
            take(key, "PERSON", first + " " + last)
        elif key == "LAST":
            take(key, "PERSON", last)
        elif key == "EMAIL":
            take(key, "EMAIL", email(r, first, last))
        elif key in ("PHONE", "PHONE2"):
            take(key, "PHONE", phone(r))
        elif key == "CREDIT_CARD":
            take(key, "CREDIT_CARD", card(r))
        elif key == "IBAN":
            take(key, "IBAN", iban(r))
        elif key == "SSN":
            take(key, "SSN", ssn(r))
        elif key == "DATE":
            take(key, "DATE", date(r))
        elif key in ("IP_ADDRESS", "IP_ADDRESS2"):
            take(key, "IP_ADDRESS", ipv4(r))
        elif key == "IPV6":
            take(key, "IP_ADDRESS", ipv6(r))
        elif key == "MAC_ADDRESS":
            take(key, "MAC_ADDRESS", mac(r))
        elif key == "URL":
            take(key, "URL", url(r))
        elif key == "ADDRESS":
            take(key, "ADDRESS", address(r))
        elif key == "ORGANIZATION":
            take(key, "ORGANIZATION", organization(r))
        elif key == "LOCATION":
            take(key, "LOCATION", r.choice(CITIES))
    text = template.format(**values)
    # A value may occur inside another one (a surname inside an email is not a separate entity,
    # a city inside an address is part of the address); keep labels that occur on their own.
    unique = []
    for e in entities:
        if e not in unique:
            unique.append(e)
    return {"text": text, "entities": unique}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--count", type=int, default=700)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "data", "pii_generated.jsonl"))
    args = parser.parse_args()
    r = random.Random(args.seed)
    lines = []
    for i in range(args.count):
        if i % 10 == 9:
            lines.append({"text": r.choice(NEGATIVES), "entities": []})
        else:
            lines.append(fill(r, TEMPLATES[i % len(TEMPLATES)] if i < len(TEMPLATES) * 2 else r.choice(TEMPLATES)))
    with open(args.out, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
