"""Workers: worker definitions, live workers, and runtime worker statuses (orders to one worker)."""
