"""Which class implements each value of the ``trainer`` option, as "module:Class" strings
(imported only when a run is built, so validating a config imports no torch). A new trainer
subclasses ``trainers.base.Trainer`` and adds one line here.

    varibad    the on-policy VariBAD family (VariBAD, RL2, oracles, HyperX, hypernetwork
               policies, task inference, dream envs)
    maml       the gradient-based family (MAML-TRPO, E-MAML, MAML+noise, MAML+VIME, MIME)
    hyperzero  HyperZero's pipeline (TD3 experts, dataset, hypernetwork regressor, zero-shot evaluation)
"""

TRAINERS: dict[str, str] = {
    "varibad": "metalearner:MetaLearner",
    "maml": "trainers.maml:MAMLTrainer",
    "hyperzero": "trainers.hyperzero:HyperZeroTrainer",
}
