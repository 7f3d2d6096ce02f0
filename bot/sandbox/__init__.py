"""`python -m bot sandbox`: the whole bot on one machine, no accounts, every mode played once.

The run is bot.sandbox.run; nothing is imported here, so the sandbox's fake Discord
(bot.sandbox.fakediscord) loads without the bot, as the tests and benchmarks use it.
"""
