"""Plan data: the enterprise register now; targets, budgets and limits from issue 6."""
