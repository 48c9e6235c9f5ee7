"""Structured output: the answer parsed and validated into a pydantic model
(`output_type=`)."""

import _common
from pydantic import BaseModel

import allm


class City(BaseModel):
    name: str
    country: str
    population_millions: float


engine, offline = _common.chat_engine(
    __doc__,
    script=[("text", '{"name": "Tokyo", "country": "Japan", "population_millions": 14.2}')],
)

result = allm.chat(engine, "Give me facts about Tokyo.", output_type=City)
city = result.output
print(repr(city))
_common.check(isinstance(city, City), "the answer is a City")
_common.check(city.country.lower() == "japan", "Tokyo is in Japan")
