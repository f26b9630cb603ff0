import gc

# torch, torchvision and Lightning create about a million long-lived objects on import. The cyclic garbage
# collector would traverse them again and again during the imports and once more at exit: about 1.3 s of a 4 s
# start on a 2-core machine. They live as long as the process, so the collector skips them (gc.freeze).
gc.disable()
from crack_lightning.cli import main  # noqa: E402

gc.freeze()
gc.enable()

if __name__ == "__main__":
    main()
