"""The stored face-set: the FiftyOne dataset and its database (``store``), the subsets A/B (``subsets``), the
reversible trash (``trash``), filters as saved views (``views``), the summary (``info``) and every field name
(``schema``)."""
