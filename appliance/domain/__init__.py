"""Pure rules of the store: money, menu and pricing, table tokens, the order state machine. Standard library only."""
