"""The reference tracker agent (`kawal agent`): gpsd + a GPIO seal contact -> MQTT (CONTRACT 1.1, 1.2).

config: the agent's config file; gpsd: fixes from gpsd; seal: the debounced seal and tamper contacts;
battery: sysfs capacity; queue: the SQLite store-and-forward queue; uplink: MQTT publishing with PUBACK
tracking; agent: the loop that ties them together; cli: the command. Documentation: docs/agent.md.
"""
