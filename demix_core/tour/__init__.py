"""The tour: the demo from nothing to a verdict with no typing (``demix tour``, started by ``make run``).

One background pipeline, stage by stage (:mod:`~demix_core.tour.stages`): the demo's components, its reference
models, validation of both proxy kinds, a study on the proxy validation picked, the recommendation and its
baselines trained, validation again (the verdict), then the paper suite. Each stage is recorded in
``<workspace>/tour.json`` when it starts and ends (:mod:`~demix_core.tour.state`), so a killed run continues with
the stage it was in (and that stage's own work resumes: trained models are kept, training continues from its
last saved step), and the dashboard shows where it stands (:mod:`~demix_core.tour.status`).
"""
