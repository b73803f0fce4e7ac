"""Host runtime for the board (flow.py run): pyserial + golden/protocol.py."""
