"""Human evaluation: pairwise side-by-side studies of two runs, and imports of published human ratings.

    export  two runs -> rater sheets (HTML page, CSV, XLSX) + an answer key kept apart      (export.py)
    import  filled sheets + key -> validated, un-blinded judgements                           (unblind.py)
    import-likert  GenAI-Bench 1-5 ratings -> the same judgements                             (likert.py)
    import-geneval GenEval's MTurk answers -> per-image human correctness, vs the judge of a  (geneval_mturk.py)
                   run that holds the very images the raters saw
    report  judgements -> win/tie/lose with bootstrap CIs, inter-rater agreement, bar chart   (report.py, plot.py)

Every import writes a study folder (`study.py`): `study.json` plus `judgements.jsonl`, outcomes always
from run A's side, so `report` reads one format whatever the source.
"""
