"""Memory environments (T-Maze family, Memory & Planning Game, ImageMaze). Importing this
package registers them."""
from environments.memory import image_maze, planning_game, tmaze  # noqa: F401
