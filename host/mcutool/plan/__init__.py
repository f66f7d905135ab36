"""Planning: lowering, the windowed stage, the arena. A plan is data, made once on the host."""
