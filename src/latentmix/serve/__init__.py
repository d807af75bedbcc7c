"""The web demo (`latentmix serve`): a FastAPI app (app.py), its bounded job queue (jobs.py), the jobs
themselves (tasks.py) and one static page (static/). Only latentmix.cli imports this package."""
