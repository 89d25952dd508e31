"""The partners' header rows, written out as the feed specifications give them (one copy).

A literal on purpose, not read from the contract or the generator: it is the oracle that the
contracts (tests/unit/test_parsing*.py) and the synthetic generator (test_synthetic.py) agree
with what a partner really sends, and the first line of the partner files tests write by hand.
"""

POLICE_HEADER = "Diarienr;Händelsetid;Registrerad;Plats;Koord_N;Koord_E;Händelsetyp;Roll;Personnummer;Namn;Ålder;Fritext"
GUARDS_HEADER = ("rapport_nr,datum,klockslag,plats,ingripande,personnummer,namn,telefon,"
                 "ordningsvakt_id,polis_underrattad,beskrivning")
