"""
Telnet option negotiation for the line front end: what the server offers,
and its half of each option's state (RFC 1143).  Taking telnet commands out
of the input is L{twisted_chat.text.TelnetFilter}'s job (the client shares it).
"""

from __future__ import annotations

IAC, WILL, WONT, DO, DONT = 0xFF, 0xFB, 0xFC, 0xFD, 0xFE
BINARY, ECHO, SGA, TIMING_MARK = 0, 1, 3, 6
# What the greeting offers, at the end of its line: "send me 8-bit bytes".
# Only DO BINARY: netkit-derived telnets (inetutils 2.4 included) answer a
# server's WILL BINARY by turning off their terminal's output processing, so
# the local echo of Enter no longer returns to the first column.
OFFERS = bytes((IAC, DO, BINARY))
# Prompts whose answer the terminal should not show (WILL ECHO around them).
HIDDEN_PROMPTS = frozenset({"passcode", "password"})

# RFC 1143 states of one option on one side.
NO, YES, WANT_NO, WANT_YES = range(4)


class TelnetOptions:
    """
    The server's half of telnet option negotiation with one client: RFC
    1143's Q method, so every request is answered once, no answer is ever
    answered, and a change of mind while a request is out waits for its
    answer.

    The server performs BINARY (on request) and ECHO (only while a
    L{HIDDEN_PROMPTS} prompt waits, when it echoes nothing: the input is
    hidden), answers every C{DO TIMING-MARK} with C{WILL TIMING-MARK}, asks the
    client for BINARY and refuses everything else: refusing SGA and ECHO keeps
    telnet in line mode, where it edits and echoes the line itself.
    """

    __slots__ = ("_queued", "_them", "_us", "hidden")

    def __init__(self) -> None:
        self._us: dict[int, int] = {}  # options the server performs (WILL)
        self._them: dict[int, int] = {BINARY: WANT_YES}  # the client's (DO): OFFERS
        self._queued: set[int] = set()  # our options to flip once their answer is in
        self.hidden = False  # whether the server wants ECHO (input hidden)

    def received(self, verb: int, option: int) -> bytes:
        """The answer to one C{IAC verb option} from the client (C{b""}: none)."""
        if verb in (DO, DONT):
            if option == TIMING_MARK:  # "tell me when you got here": no state
                return bytes((IAC, WILL, TIMING_MARK)) if verb == DO else b""
            table, yes, no = self._us, WILL, WONT
            wanted = option == BINARY or (option == ECHO and self.hidden)
        else:
            table, yes, no = self._them, DO, DONT
            wanted = option == BINARY
        state = table.get(option, NO)
        queued = table is self._us and option in self._queued
        if queued:
            self._queued.discard(option)
        if verb in (DO, WILL):  # asks to enable, or agrees to
            if state == NO:
                if wanted:
                    table[option] = YES
                    return bytes((IAC, yes, option))
                return bytes((IAC, no, option))
            if state == WANT_YES and queued:  # agreed, but we no longer want it
                table[option] = WANT_NO
                return bytes((IAC, no, option))
            # WANT_YES: agreed; WANT_NO: RFC 1143's error case (queued: as wanted)
            table[option] = YES if state != WANT_NO or queued else NO
            return b""
        if state == YES:  # asks to disable: always agreed to
            table[option] = NO
            return bytes((IAC, no, option))
        if state == WANT_NO and queued:  # our WONT was answered; now we want it again
            table[option] = WANT_YES
            return bytes((IAC, yes, option))
        table[option] = NO  # the answer to our request, or a refusal of it
        return b""

    def hide(self, hidden: bool) -> bytes:
        """Start or stop hiding the client's input; the request to send, if any."""
        self.hidden = hidden
        state = self._us.get(ECHO, NO)
        if state == (NO if hidden else YES):
            self._us[ECHO] = WANT_YES if hidden else WANT_NO
            return bytes((IAC, WILL if hidden else WONT, ECHO))
        if state == (WANT_NO if hidden else WANT_YES):
            self._queued.add(ECHO)  # asked the other way: flip once answered
        else:
            self._queued.discard(ECHO)
        return b""
