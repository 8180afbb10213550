"""Importers: public datasets in their own layout -> a medvl manifest (the data stays where it is).

* :mod:`medvl.data.importers.covid_cxr` - the COVID-19 image data collection (Cohen et al.):
  frontal chest radiographs, with the imaging-findings sentences of the clinical notes as
  reports, split by patient (``python -m medvl.data.importers.covid_cxr --help``).
"""
