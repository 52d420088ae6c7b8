"""``python -m plaza.cli``: the ``plaza`` command, run by the interpreter at hand.

``plaza up`` starts each service this way (``sys.executable -m plaza.cli serve ...``),
so its children run the same Python, and the same ``plaza`` package, as it does.
"""

from plaza.cli import main

main()
