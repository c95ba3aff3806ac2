"""``DataError``: bad data, named by its source, its place and the problem."""


class DataError(ValueError):
    """A source holds data fastlr cannot train on, or cannot be read as asked.

    The message names the source (a file, or the kind of in-memory object),
    where the problem is (a line of a text file, a row group or block and a
    row) and what is wrong, with what to do about it where that is known.

    Parameters
    ----------
    source : str
        The file, folder or object the data come from.
    problem : str
        What is wrong, as a sentence.
    where : str, optional
        Where in the source: ``"line 12"``, ``"row group 3, row 7"``, ...

    Attributes
    ----------
    source, where, problem : str or None
        The parts of the message.
    """

    def __init__(self, source, problem, where=None):
        self.source = source
        self.where = where
        self.problem = problem
        place = f"{source}, {where}" if where else f"{source}"
        super().__init__(f"{place}: {problem}")

    def __reduce__(self):
        return type(self), (self.source, self.problem, self.where)
