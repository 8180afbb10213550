"""``streamlit run dashboard/app.py``: the medvl dashboard from a checkout.

The app itself ships with the package (:mod:`medvl.dashboard.app`), so that ``medvl dashboard``
works from any install; this file only starts it.
"""

from medvl.dashboard.app import main

main()
