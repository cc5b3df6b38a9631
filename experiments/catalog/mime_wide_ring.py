"""MIME (seed 002): MAML vs MAML+expl (VIME bonus) vs MIME (meta-learned eta) vs E-MAML on the
sparse wide-ring 2-D navigation, at the seed's own settings (103 meta-iterations of 10 tasks x 20
trajectories x 100 steps x 2 = 4.1e6 frames), 3 seeds. Post-adaptation return and success on the
fixed test goals are ``return_episode_2`` / ``success_episode_2`` (episode 1 = before adaptation).
``mime_wide_ring_pilot`` is the same with one seed."""
SET = dict(
    description="MIME: MIME reaches sparse goals where MAML does not",
    arms=["nav_wide_ring_maml", "nav_wide_ring_maml_expl", "nav_wide_ring_mime", "nav_wide_ring_emaml"],
    options={"progress_bar": False, "vis_interval": 50},
    seeds=[1, 2, 3],
    num_frames="preset",
    score="success",
)
