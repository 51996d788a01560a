"""A poll, from fetch to store: the service and the write side it composes.

    service.py       the only module that knows the order of the stages
    prepare.py       parse → normalise → sketch for one document (worker processes)
    decide.py        pure: what a poll changes (new, revised, the feed's next state)
    policy.py        pure: next poll time, back-off, redirects, feed status
    writer.py        writes what a poll changes, each write in one transaction
    index_keeper.py  the in-memory index kept in step with the database
    subscriptions.py the database opened and migrated, the settings file's feeds subscribed

``newsfold fetch`` and the daemon both drive ``service.Service``.
"""
